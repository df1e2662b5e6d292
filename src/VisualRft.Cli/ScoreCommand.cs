using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using VisualRft.Rewards;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft score --task detection|classification|grounding --preset visual-rft|strict [FILE]</c>: scores JSON lines
/// <c>{"completion": "...", "solution": "..."}</c> from FILE (stdin without one) and writes one JSON line per input
/// line, in order: <c>{"line": n, "&lt;component&gt;": value, …, "total": value}</c> plus <c>"failure"</c> when the answer
/// could not be read. A malformed input line yields <c>{"line": n, "error": "..."}</c> and the run goes on. Blank
/// (whitespace-only) lines are skipped without output; the <c>line</c> field keeps outputs traceable to inputs.
/// Non-finite values (the visual-rft NaN confidence) are written as the strings "NaN", "Infinity", "-Infinity".
/// Exit code 0 when the input was read (even with malformed lines), 2 when FILE does not exist, 1 for invalid arguments.
/// </summary>
public static class ScoreCommand
{
    static readonly string[] Tasks = ["detection", "classification", "grounding"];
    static readonly string[] Presets = ["visual-rft", "strict"];

    // Completions are written back in messages; keep <, >, ' readable (the output is not embedded in HTML).
    static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "detection | classification | grounding", Required = true };
        task.AcceptOnlyFromAmong(Tasks);
        var preset = new Option<string>("--preset") { Description = "visual-rft (the official code's behaviour) | strict", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong(Presets);
        var file = new Argument<FileInfo?>("file") { Description = "JSON lines file; stdin when omitted", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("score", "Score completions against solutions with a Visual-RFT verifiable reward") { task, preset, file };
        cmd.SetAction(parse =>
        {
            var reward = TaskReward.Create(ParseTask(parse.GetValue(task)!), ParsePreset(parse.GetValue(preset)!));
            var path = parse.GetValue(file);
            var output = parse.InvocationConfiguration.Output;
            if (path is null)
            {
                Run(Console.In, output, reward);
                return 0;
            }
            if (!path.Exists)
            {
                parse.InvocationConfiguration.Error.WriteLine($"vrft score: input file '{path.FullName}' does not exist");
                return 2;
            }
            using var reader = new StreamReader(path.FullName, Encoding.UTF8);
            Run(reader, output, reward);
            return 0;
        });
        return cmd;
    }

    public static VisualTask ParseTask(string name) => name switch
    {
        "detection" => VisualTask.Detection,
        "classification" => VisualTask.Classification,
        "grounding" => VisualTask.Grounding,
        _ => throw new ArgumentException($"unknown task '{name}'; expected one of {string.Join(", ", Tasks)}"),
    };

    public static RewardPreset ParsePreset(string name) => name switch
    {
        "visual-rft" => RewardPreset.VisualRft,
        "strict" => RewardPreset.Strict,
        _ => throw new ArgumentException($"unknown preset '{name}'; expected one of {string.Join(", ", Presets)}"),
    };

    /// <summary>Scores every line of <paramref name="input"/> into <paramref name="output"/>; returns the number of
    /// lines scored and the number answered with an error object.</summary>
    public static (int Scored, int Errors) Run(TextReader input, TextWriter output, TaskReward reward)
    {
        int lineNo = 0, scored = 0, errors = 0;
        for (string? line; (line = input.ReadLine()) is not null;)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer, WriterOptions))
            {
                json.WriteStartObject();
                json.WriteNumber("line", lineNo);
                if (TryRead(line, out var completion, out var solution, out var error))
                {
                    var r = reward.Score(completion, solution);
                    foreach (var c in r.Components) WriteNumber(json, c.Name, c.Value);
                    WriteNumber(json, "total", r.Total);
                    if (r.Failure is not null)
                    {
                        json.WriteStartObject("failure");
                        json.WriteString("kind", r.Failure.Kind.ToString());
                        json.WriteString("message", r.Failure.Message);
                        json.WriteEndObject();
                    }
                    scored++;
                }
                else
                {
                    json.WriteString("error", error);
                    errors++;
                }
                json.WriteEndObject();
            }
            output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
        }
        output.Flush();
        return (scored, errors);
    }

    static void WriteNumber(Utf8JsonWriter json, string name, double v)
    {
        if (double.IsFinite(v)) json.WriteNumber(name, v);
        else json.WriteString(name, double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }

    static bool TryRead(string line, out string completion, out string solution, out string error)
    {
        completion = solution = error = "";
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) { error = $"expected a JSON object, got {root.ValueKind}"; return false; }
            if (!TryString(root, "completion", out completion, out error) || !TryString(root, "solution", out solution, out error)) return false;
            return true;
        }
        catch (JsonException e)
        {
            error = $"invalid JSON: {e.Message}";
            return false;
        }
        catch (InvalidOperationException e)   // e.g. a string with an invalid escape that cannot become UTF-16
        {
            error = $"invalid JSON string: {e.Message}";
            return false;
        }
    }

    static bool TryString(JsonElement root, string key, out string value, out string error)
    {
        value = error = "";
        if (!root.TryGetProperty(key, out var v)) { error = $"missing \"{key}\""; return false; }
        if (v.ValueKind != JsonValueKind.String) { error = $"\"{key}\" must be a string, got {v.ValueKind}"; return false; }
        value = v.GetString()!;
        return true;
    }
}
