using System.CommandLine;
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

    static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var root = VrftCommandLine.Create();
        int code = root.Parse(args).Invoke(new InvocationConfiguration { Output = o, Error = e });
        return (code, o.ToString(), e.ToString());
    }

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
