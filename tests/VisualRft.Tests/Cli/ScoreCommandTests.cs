using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using VisualRft.Cli;
using VisualRft.Rewards;

namespace VisualRft.Tests.Cli;

// Inside VisualRft.* the name Rewards binds to the namespace first; the alias picks the factory class.
using Rewards = VisualRft.Rewards.Rewards;

public class ScoreCommandTests
{
    static MemoryStream Utf8(string text) => new(System.Text.Encoding.UTF8.GetBytes(text));

    static List<JsonElement> Lines(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void ScoresGoodLinesAndReportsMalformedOnesInOrder()
    {
        string input = string.Join("\n",
            """{"completion": "<think>x</think><answer>[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}]</answer>", "solution": "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>"}""",
            "not json",
            "",
            """{"completion": 3, "solution": "x"}""",
            """{"completion": "<think>x</think><answer>[{'Position': [100, 101, 300, 300], 'Confidence': NaN}]</answer>", "solution": "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>"}""",
            """["completion"]""",
            """{"solution": "x"}""");
        var output = new StringWriter();
        var (scored, errors) = ScoreCommand.Run(Utf8(input), output, Rewards.Detection());
        Assert.Equal((2, 4), (scored, errors));
        var lines = Lines(output.ToString());
        Assert.Equal([1, 2, 4, 5, 6, 7], lines.Select(l => l.GetProperty("line").GetInt32()));
        Assert.Equal(0.995, lines[0].GetProperty("iou").GetDouble(), 12);
        Assert.Equal(0.995 + 0.9 + 1, lines[0].GetProperty("total").GetDouble(), 12);
        Assert.Contains("invalid JSON", lines[1].GetProperty("error").GetString());
        Assert.Contains("\"completion\" must be a string", lines[2].GetProperty("error").GetString());
        Assert.Equal("NaN", lines[3].GetProperty("confidence").GetString());
        Assert.Contains("expected a JSON object", lines[4].GetProperty("error").GetString());
        Assert.Contains("missing \"completion\"", lines[5].GetProperty("error").GetString());
    }

    [Fact]
    public void WritesTheFailureReasonOfAnUnreadableAnswer()
    {
        var output = new StringWriter();
        ScoreCommand.Run(Utf8("""{"completion": "<answer>rose or lotus</answer>", "solution": "<answer>lotus</answer>"}"""),
            output, Rewards.Classification(RewardPreset.Strict));
        var line = Lines(output.ToString()).Single();
        Assert.Equal(0, line.GetProperty("accuracy").GetDouble());
        Assert.Equal("MultipleClasses", line.GetProperty("failure").GetProperty("kind").GetString());
    }

    static (int Code, string Out, string Err) Invoke(params string[] args) => Vrft.Invoke(args);

    [Fact]
    public void ScoresTheShippedExamplesThroughTheCommandLine()
    {
        foreach (var task in new[] { "detection", "classification", "grounding" })
            foreach (var preset in new[] { "visual-rft", "strict" })
            {
                string file = Path.Combine(Golden.RepoRoot, "examples", $"{task}.jsonl");
                var (code, output, _) = Invoke("score", "--task", task, "--preset", preset, file);
                Assert.Equal(0, code);
                Assert.Equal(File.ReadLines(file).Count(l => l.Trim().Length > 0), Lines(output).Count);
            }
    }

    [Fact]
    public void MissingFilesAndBadArgumentsFailClearly()
    {
        var missing = Invoke("score", "--task", "detection", Path.Combine(Path.GetTempPath(), "vrft-no-such-file.jsonl"));
        Assert.Equal(2, missing.Code);
        Assert.Contains("does not exist", missing.Err);
        Assert.NotEqual(0, Invoke("score", "--task", "segmentation").Code);
        Assert.NotEqual(0, Invoke("score", "--task", "detection", "--preset", "lenient").Code);
        Assert.NotEqual(0, Invoke("score").Code);
    }
}

/// <summary>vrft score on hostile input: bounded lines and memory, per-line errors, Python's JSON, short messages.</summary>
public class ScoreCommandHostileInputTests
{
    const string Good = """{"completion": "<think>x</think><answer>[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}]</answer>", "solution": "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>"}""";

    static List<JsonElement> Score(Stream input, TaskReward reward, int maxLineBytes = ScoreCommand.DefaultMaxLineBytes)
    {
        var output = new StringWriter();
        ScoreCommand.Run(input, output, reward, maxLineBytes);
        return [.. output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    static MemoryStream Bytes(params byte[][] parts) => new([.. parts.SelectMany(p => p)]);
    static byte[] Utf8(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    /// <summary>A stream of <paramref name="length"/> copies of one byte, without a line end (a stand-in for /dev/zero).</summary>
    sealed class Endless(long length, byte value, byte[] tail) : Stream
    {
        long position;
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (position >= length + tail.Length) return 0;
            int n = 0;
            for (; n < count && position < length + tail.Length; n++, position++)
                buffer[offset + n] = position < length ? value : tail[position - length];
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void A_line_over_the_limit_is_refused_in_bounded_memory_and_the_next_is_scored()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var lines = Score(new Endless(64L << 20, 0, Utf8("\n" + Good + "\n")), Rewards.Detection(), maxLineBytes: 1 << 16);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 4 << 20, $"{allocated:N0} bytes allocated to skip a 64 MB line");
        Assert.Equal(2, lines.Count);
        Assert.Contains("longer than 65,536 bytes (--max-line-bytes); skipped", lines[0].GetProperty("error").GetString());
        Assert.Equal((1, 2), (lines[0].GetProperty("line").GetInt32(), lines[1].GetProperty("line").GetInt32()));
        Assert.Equal(0.995, lines[1].GetProperty("iou").GetDouble(), 12);
    }

    [Fact]
    public void The_line_buffer_holds_no_more_than_the_limit()
    {
        // 32 MiB of zeros without a line end under a 32 MiB limit: an array grown by doubling allocated about 64 MiB on the
        // way (issue 19: a 1 GiB limit on /dev/zero peaked at 2.86 GB); chunks allocate the limit and one chunk more.
        const int limit = 32 << 20;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var lines = Score(new Endless(limit + 1000L, 0, Utf8("\n" + Good + "\n")), Rewards.Detection(), maxLineBytes: limit);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < limit + (2 << 20), $"{allocated:N0} bytes allocated for a line limit of {limit:N0}");
        Assert.Equal(2, lines.Count);
        Assert.Equal(0.995, lines[1].GetProperty("iou").GetDouble(), 12);
    }

    [Fact]
    public void A_line_of_several_chunks_is_decoded_whole_and_a_bad_byte_named_by_its_offset()
    {
        // a completion of 200,000 characters, two bytes each in UTF-8: the line spans several chunks and splits characters
        var answer = new string('é', 200_000);
        var json = "{\"completion\": \"<answer>" + answer + "</answer>\", \"solution\": \"<answer>lotus</answer>\"}";
        var line = Assert.Single(Score(Bytes(Utf8(json)), Rewards.Classification(RewardPreset.Strict)));
        Assert.False(line.TryGetProperty("error", out _));
        Assert.Equal(0, line.GetProperty("accuracy").GetDouble());
        var bad = Utf8(json);
        bad[150_000] = 0xFF;   // the first byte of a character, in the third chunk
        Assert.Contains("invalid byte at offset 150000", Assert.Single(Score(Bytes(bad), Rewards.Classification())).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Vrft_score_stops_when_its_reader_closes_the_output()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "score", "--task", "detection"])
            { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        // endless input, as from `yes`: written until the process is gone
        var writer = Task.Run(() =>
        {
            try { while (!p.HasExited) p.StandardInput.WriteLine(Good); }
            catch (IOException) { }   // the process closed its input by exiting
        });
        Assert.StartsWith("{\"line\":1,", p.StandardOutput.ReadLine());
        p.StandardOutput.Close();   // what `| head -1` does after its line
        Assert.True(p.WaitForExit(30_000), "vrft score kept reading after its output was closed");
        Assert.Equal(VrftCommandLine.ExitCodes.OutputClosed, p.ExitCode);
        Assert.Equal("", await stderr);
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Invalid_utf8_is_an_error_for_its_line_only()
    {
        var lines = Score(Bytes(Utf8("{\"completion\": \"a"), [0xC3, 0x28], Utf8("\", \"solution\": \"b\"}\n" + Good)), Rewards.Detection());
        Assert.Contains("not valid UTF-8", lines[0].GetProperty("error").GetString());
        Assert.Equal(0.995, lines[1].GetProperty("iou").GetDouble(), 12);
    }

    [Fact]
    public void Lone_surrogate_escapes_are_read_as_python_reads_them()
    {
        var lines = Score(Bytes(Utf8("""{"completion": "<think>\ud800</think><answer>\udc00 rose</answer>", "solution": "<answer>lotus</answer>"}""")),
            Rewards.Classification(RewardPreset.Strict));
        var line = Assert.Single(lines);
        Assert.False(line.TryGetProperty("error", out _));
        Assert.Equal(1, line.GetProperty("format").GetDouble());
        Assert.Contains("\ufffd", line.GetProperty("failure").GetProperty("message").GetString());
    }

    [Fact]
    public void Messages_quote_a_short_excerpt_of_a_huge_answer()
    {
        var answer = new string('x', 200_000);
        var json = JsonSerializer.Serialize(new { completion = $"<answer>{answer}</answer>", solution = "<answer>lotus</answer>" });
        var output = new StringWriter();
        ScoreCommand.Run(Bytes(Utf8(json)), output, Rewards.Classification());
        Assert.True(output.ToString().Length < 1000, $"{output.ToString().Length} characters of output");
    }

    [Fact]
    public void Line_ends_and_a_byte_order_mark_are_handled_as_stream_readers_do()
    {
        var lines = Score(Bytes([0xEF, 0xBB, 0xBF], Utf8(Good + "\r\n" + Good + "\r" + Good)), Rewards.Detection());
        Assert.Equal([1, 2, 3], lines.Select(l => l.GetProperty("line").GetInt32()));
        Assert.All(lines, l => Assert.Equal(0.995, l.GetProperty("iou").GetDouble(), 12));
    }
}
