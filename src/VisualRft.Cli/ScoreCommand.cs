using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using VisualRft.IO;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft score --task detection|classification|grounding --preset visual-rft|strict [--max-line-bytes N] [FILE]</c>:
/// scores JSON lines <c>{"completion": "...", "solution": "..."}</c> (UTF-8) from FILE (stdin without one) and writes one
/// JSON line per input line, in order: <c>{"line": n, "&lt;component&gt;": value, …, "total": value}</c> plus
/// <c>"failure"</c> when the answer could not be read.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Lines are read with Python's <c>json.loads</c> semantics (<see cref="PyJson"/>), so escapes of lone surrogates
/// (<c>"\ud800"</c>) are accepted as Python accepts them; lines end at LF, CRLF or CR.</item>
/// <item>A line that cannot be used yields <c>{"line": n, "error": "..."}</c> and the run goes on: invalid JSON, a
/// missing or non-string field, bytes that are not UTF-8, and a line longer than <c>--max-line-bytes</c> (default
/// <see cref="DefaultMaxLineBytes"/>; such a line is skipped without being held in memory, and its error is written as
/// soon as the limit is passed, so memory stays bounded even on an endless line).</item>
/// <item>Messages quote at most <see cref="Excerpt.DefaultLength"/> characters of the input.</item>
/// <item>Blank (whitespace-only) lines are skipped without output; the <c>line</c> field keeps outputs traceable.</item>
/// <item>Non-finite values (only under visual-rft: a NaN confidence, an overflowing grounding answer) are written as the
/// strings "NaN", "Infinity", "-Infinity".</item>
/// <item>When standard output is closed by its reader (<c>vrft score … | head -1</c>) the command stops reading at the
/// next line it writes and exits <see cref="VrftCommandLine.ExitCodes.OutputClosed"/>, without a message.</item>
/// <item>Exit code 0 when the input was read to the end (even with error lines); otherwise see
/// <see cref="VrftCommandLine.ExitCodes"/> (a missing file, a directory or UTF-16 input: 2).</item>
/// </list>
/// </remarks>
public static class ScoreCommand
{
    /// <summary>1 MiB: a few hundred times a real completion with its solution.</summary>
    public const int DefaultMaxLineBytes = 1 << 20;
    public const int MaxMaxLineBytes = 1 << 30;

    // Completions are written back in messages; keep <, >, ' readable (the output is not embedded in HTML).
    internal static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "detection | classification | grounding", Required = true };
        task.AcceptOnlyFromAmong(EnumNames.All<VisualTask>());
        var preset = new Option<string>("--preset") { Description = "visual-rft (the official code's behaviour) | strict", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong(EnumNames.All<RewardPreset>());
        var maxLine = new Option<int>("--max-line-bytes")
        {
            Description = $"longest input line scored; longer ones get an error line and are skipped (default {DefaultMaxLineBytes:N0})",
            DefaultValueFactory = _ => DefaultMaxLineBytes,
        };
        var file = new Argument<FileInfo?>("file") { Description = "JSON lines file (UTF-8); stdin when omitted", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("score", "Score completions against solutions with a Visual-RFT verifiable reward") { task, preset, maxLine, file };
        cmd.SetAction(parse =>
        {
            var reward = TaskReward.Create(EnumNames.Parse<VisualTask>(parse.GetValue(task)!, "task"), EnumNames.Parse<RewardPreset>(parse.GetValue(preset)!, "preset"));
            int limit = OptionChecks.InRange(parse, maxLine, 64, MaxMaxLineBytes);
            var path = parse.GetValue(file)?.FullName;
            if (path is not null && Directory.Exists(path)) throw new InvalidDataException($"input '{path}' is a directory, not a JSON lines file");
            if (path is not null && !File.Exists(path)) throw new FileNotFoundException($"input file '{path}' does not exist", path);
            using var input = path is null ? Console.OpenStandardInput() : BoundedFile.OpenRegular(path, "JSON lines file");
            // Console.Out drops what it cannot write to a closed pipe without a word, so `vrft score | head -1` on endless
            // input would read forever: standard output is written through a stream that reports EPIPE.
            using var stdout = ReferenceEquals(parse.InvocationConfiguration.Output, Console.Out) ? StandardOutput() : null;
            try { Run(input, stdout ?? parse.InvocationConfiguration.Output, reward, limit, path ?? "stdin"); }
            catch (IOException e) when (e.HResult == BrokenPipe) { return VrftCommandLine.ExitCodes.OutputClosed; }
            return 0;
        });
        return cmd;
    }

    /// <summary>errno EPIPE on Linux, which .NET's stream errors carry as their HResult.</summary>
    const int BrokenPipe = 32;

    /// <summary>File descriptor 1 as a stream whose writes fail on a closed pipe (flushed at every line, as Console.Out is,
    /// so a reader sees each score as it is made).</summary>
    static StreamWriter StandardOutput() =>
        new(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0), new UTF8Encoding(false))
            { AutoFlush = true };

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Scores every line of <paramref name="input"/> into <paramref name="output"/>; returns the number of
    /// lines scored and the number answered with an error object.</summary>
    public static (int Scored, int Errors) Run(Stream input, TextWriter output, TaskReward reward,
        int maxLineBytes = DefaultMaxLineBytes, string source = "input")
    {
        int scored = 0, errors = 0;
        var lines = new LineReader(input, maxLineBytes, source);
        while (lines.Next(out bool tooLong))
        {
            string? text = null, error = null;
            if (tooLong) error = $"the line is longer than {maxLineBytes:N0} bytes (--max-line-bytes); skipped";
            else
            {
                text = lines.Decode(out error);
                if (text is not null && string.IsNullOrWhiteSpace(text)) continue;
            }
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer, WriterOptions))
            {
                if (error is null && TryRead(text!, out var completion, out var solution, out error))
                {
                    WriteScore(json, lines.LineNumber, reward, completion, solution);
                    scored++;
                }
                else
                {
                    WriteError(json, lines.LineNumber, error!);
                    errors++;
                }
            }
            output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
            if (tooLong) output.Flush();   // an endless line is skipped for as long as it lasts: say so now
        }
        output.Flush();
        return (scored, errors);
    }

    /// <summary>The object <c>vrft score</c> writes for a pair it scored: <c>{"line": n, "&lt;component&gt;": value, …,
    /// "total": value[, "failure": {"kind", "message"}]}</c>. <c>vrft serve-rewards</c> answers with the same object, so
    /// both give the same keys and values for the same pair.</summary>
    internal static void WriteScore(Utf8JsonWriter json, int line, TaskReward reward, string completion, string solution)
    {
        var r = reward.Score(completion, solution);
        json.WriteStartObject();
        json.WriteNumber("line", line);
        foreach (var c in r.Components) WriteNumber(json, c.Name, c.Value);
        WriteNumber(json, "total", r.Total);
        if (r.Failure is not null)
        {
            json.WriteStartObject("failure");
            json.WriteString("kind", r.Failure.Kind.ToString());
            json.WriteString("message", Printable(r.Failure.Message));
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    /// <summary>The object for an input that could not be scored: <c>{"line": n, "error": "..."}</c>.</summary>
    internal static void WriteError(Utf8JsonWriter json, int line, string error)
    {
        json.WriteStartObject();
        json.WriteNumber("line", line);
        json.WriteString("error", Printable(error));
        json.WriteEndObject();
    }

    static void WriteNumber(Utf8JsonWriter json, string name, double v)
    {
        if (double.IsFinite(v)) json.WriteNumber(name, v);
        else json.WriteString(name, double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }

    /// <summary>Messages may quote input that holds lone surrogates (valid in a Python string, not in UTF-8 output):
    /// those are shown as U+FFFD.</summary>
    static string Printable(string message)
    {
        var chars = message.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    static bool TryRead(string line, out string completion, out string solution, out string error)
    {
        completion = solution = "";
        if (!PyJson.TryLoads(line, out var root, out error)) { error = $"invalid JSON: {error}"; return false; }
        return TryPair(root, out completion, out solution, out error);
    }

    /// <summary>The completion and solution of one input object (a line here, an array item in the reward server).</summary>
    internal static bool TryPair(PyValue root, out string completion, out string solution, out string error)
    {
        completion = solution = "";
        if (root.Kind != PyKind.Dict) { error = $"expected a JSON object, got {root.TypeName}"; return false; }
        return TryString(root, "completion", out completion, out error) && TryString(root, "solution", out solution, out error);
    }

    internal static bool TryString(PyValue root, string key, out string value, out string error)
    {
        value = error = "";
        if (!root.TryGet(key, out var v)) { error = $"missing \"{key}\""; return false; }
        if (v.Kind != PyKind.Str) { error = $"\"{key}\" must be a string, got {v.TypeName} {v.Preview(40)}"; return false; }
        value = v.Str;
        return true;
    }

    /// <summary>
    /// Lines of a byte stream, each at most <c>maxLineBytes</c> long: a longer line is reported (as too long) as soon as
    /// it passes the limit, and its remaining bytes are skipped by the next call without being stored. Line ends are LF,
    /// CRLF and CR, as <see cref="StreamReader"/> splits them; a UTF-8 byte order mark at the start is skipped and a
    /// UTF-16/32 one is refused.
    /// </summary>
    /// <remarks>A line is held in chunks of <see cref="ChunkBytes"/>, not in one array grown by doubling: the memory a
    /// line takes is its length (at most the limit plus one chunk), never the 1.5 to 3 times of a doubling array and the
    /// copies it leaves to the collector (a 1 GiB limit on /dev/zero held 2.86 GB that way). Chunks of a long line are
    /// dropped when the next line starts.</remarks>
    sealed class LineReader(Stream stream, int maxLineBytes, string source)
    {
        /// <summary>Below the large-object threshold, so the chunks of a long line are collected like any small object.</summary>
        const int ChunkBytes = 64 << 10;

        readonly byte[] buffer = new byte[1 << 16];
        readonly List<byte[]> chunks = [new byte[ChunkBytes]];
        int start, end, length;
        bool eof, atStart = true, skipping, afterCr;

        public int LineNumber { get; private set; }

        /// <summary>Moves to the next line; false at the end of the stream.</summary>
        public bool Next(out bool tooLong)
        {
            tooLong = false;
            length = 0;
            if (chunks.Count > 1) chunks.RemoveRange(1, chunks.Count - 1);
            while (true)
            {
                if (start == end && !Fill()) break;
                if (afterCr)
                {
                    afterCr = false;
                    if (buffer[start] == (byte)'\n') { start++; continue; }
                }
                var span = buffer.AsSpan(start, end - start);
                int stop = span.IndexOfAny((byte)'\n', (byte)'\r');
                int take = stop < 0 ? span.Length : stop;
                if (!skipping) Append(span[..take]);
                start += take;
                if (!skipping && length > maxLineBytes)
                {
                    skipping = true;   // report now; the next call skips the rest
                    LineNumber++;
                    tooLong = true;
                    return true;
                }
                if (stop < 0) continue;
                afterCr = buffer[start] == (byte)'\r';
                start++;
                if (skipping) { skipping = false; length = 0; continue; }
                LineNumber++;
                return true;
            }
            if (skipping || length == 0) return false;   // the last line has no terminator
            LineNumber++;
            return true;
        }

        /// <summary>The current line as text, or null with <paramref name="error"/> when it is not UTF-8.</summary>
        public string? Decode(out string? error)
        {
            error = null;
            var decoder = StrictUtf8.GetDecoder();
            int chars = 0, i = 0;
            try
            {
                for (; i < chunks.Count && i * ChunkBytes < length; i++)
                    chars += decoder.GetCharCount(Part(i), flush: (i + 1) * ChunkBytes >= length);
            }
            catch (DecoderFallbackException e)
            {
                error = $"the line is not valid UTF-8 (invalid byte at offset {(long)i * ChunkBytes + e.Index})";
                return null;
            }
            decoder.Reset();
            return string.Create(chars, this, (text, reader) =>
            {
                var d = StrictUtf8.GetDecoder();
                for (int k = 0, at = 0; k < reader.chunks.Count && k * ChunkBytes < reader.length; k++)
                    at += d.GetChars(reader.Part(k), text[at..], flush: (k + 1) * ChunkBytes >= reader.length);
            });
        }

        ReadOnlySpan<byte> Part(int chunk) => chunks[chunk].AsSpan(0, Math.Min(ChunkBytes, length - chunk * ChunkBytes));

        void Append(ReadOnlySpan<byte> part)
        {
            part = part[..Math.Min(part.Length, maxLineBytes + 1 - length)];   // one byte past the limit is enough to know
            while (part.Length > 0)
            {
                int chunk = length / ChunkBytes, at = length % ChunkBytes;
                if (chunk == chunks.Count) chunks.Add(new byte[ChunkBytes]);
                int n = Math.Min(part.Length, ChunkBytes - at);
                part[..n].CopyTo(chunks[chunk].AsSpan(at));
                part = part[n..];
                length += n;
            }
        }

        bool Fill()
        {
            if (eof) return false;
            start = 0;
            end = stream.Read(buffer, 0, buffer.Length);
            if (end == 0) { eof = true; return false; }
            if (atStart)
            {
                atStart = false;
                if (end >= 2 && ((buffer[0] == 0xFF && buffer[1] == 0xFE) || (buffer[0] == 0xFE && buffer[1] == 0xFF)))
                    throw new InvalidDataException($"{source}: starts with a UTF-16 or UTF-32 byte order mark; vrft score reads UTF-8 JSON lines");
                if (end >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF) start = 3;
            }
            return start < end || Fill();
        }
    }
}
