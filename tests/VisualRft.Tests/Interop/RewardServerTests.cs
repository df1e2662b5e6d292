using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using VisualRft.Cli;
using VisualRft.Rewards;

namespace VisualRft.Tests.Interop;

/// <summary><c>vrft serve-rewards</c>: the same objects as <c>vrft score</c>, OpenRLHF's request and response, limits,
/// per-item errors, and a graceful stop on SIGTERM. Loopback only, bounded in count and time.</summary>
public class RewardServerTests
{
    static readonly string[] Tasks = ["detection", "classification", "grounding"];
    static readonly string[] Presets = ["visual-rft", "strict"];

    static async Task<(RewardServer Server, HttpClient Client, StringWriter Log)> Start(RewardServerOptions? options = null)
    {
        var log = new StringWriter();
        var server = await RewardServer.StartAsync((options ?? new()) with { Port = 0 }, log);
        return (server, new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) }, log);
    }

    static async Task<(HttpStatusCode Status, string Body)> Post(HttpClient client, string path, string body)
    {
        using var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>What vrft score writes for <paramref name="lines"/>, one JSON text per line.</summary>
    static List<string> Score(IEnumerable<string> lines, string task, string preset)
    {
        var output = new StringWriter();
        ScoreCommand.Run(new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", lines))), output,
            TaskReward.Create(EnumNames.Parse<VisualTask>(task, "task"), EnumNames.Parse<RewardPreset>(preset, "preset")));
        return [.. output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    static string Error(string body) => JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;

    static bool IsJson(string line)
    {
        try { JsonDocument.Parse(line).Dispose(); return true; } catch (JsonException) { return false; }
    }

    [Fact]
    public async Task Every_example_line_gets_the_object_vrft_score_prints_byte_for_byte()
    {
        var (server, client, _) = await Start();
        await using var _s = server;
        foreach (var task in Tasks)
            foreach (var preset in Presets)
            {
                var lines = File.ReadLines(Path.Combine(Golden.RepoRoot, "examples", $"{task}.jsonl")).Where(l => l.Trim().Length > 0 && IsJson(l)).ToList();
                // task and preset per item, each overriding the server's detection/visual-rft default
                var items = lines.Select(l => l.TrimStart().StartsWith('{') ? l.TrimEnd()[..^1] + $", \"task\": \"{task}\", \"preset\": \"{preset}\"}}" : l);
                var (status, body) = await Post(client, "/score", "[" + string.Join(",", items) + "]");
                Assert.Equal(HttpStatusCode.OK, status);
                var served = JsonDocument.Parse(body).RootElement.EnumerateArray().Select(e => e.GetRawText()).ToList();
                Assert.Equal(Score(lines, task, preset), served);
            }
    }

    [Fact]
    public async Task An_item_that_cannot_be_scored_gets_an_error_and_the_rest_are_scored()
    {
        var (server, client, log) = await Start(new() { Task = VisualTask.Classification, Preset = RewardPreset.Strict });
        await using var _s = server;
        var (status, body) = await Post(client, "/score", """
            [{"completion": "<think>a</think><answer>lotus</answer>", "solution": "<answer>lotus</answer>"},
             {"completion": 3, "solution": "x"}, 7, {"completion": "a", "solution": "b", "preset": "lenient"},
             {"completion": "<answer>rose or lotus</answer>", "solution": "<answer>lotus</answer>"}]
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        var items = JsonDocument.Parse(body).RootElement.EnumerateArray().ToList();
        Assert.Equal([1, 2, 3, 4, 5], items.Select(i => i.GetProperty("line").GetInt32()));
        Assert.Equal(2.0, items[0].GetProperty("total").GetDouble());
        Assert.Contains("\"completion\" must be a string", items[1].GetProperty("error").GetString());
        Assert.Contains("expected a JSON object, got int", items[2].GetProperty("error").GetString());
        Assert.Contains("unknown \"preset\" 'lenient'", items[3].GetProperty("error").GetString());
        Assert.Equal("MultipleClasses", items[4].GetProperty("failure").GetProperty("kind").GetString());
        Assert.Contains("POST /score 200 items=5 errors=3", log.ToString());
    }

    [Fact]
    public async Task OpenRLHF_requests_get_rewards_scores_and_extra_logs()
    {
        var (server, client, _) = await Start();
        await using var _s = server;
        const string prompt = "<|im_start|>user\nDetect the dog.<|im_end|>\n<|im_start|>assistant\n";
        const string response = "<think>one dog</think><answer>[{'Position': [100, 101, 300, 300], 'Confidence': 0.9}]</answer>";
        const string solution = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>";
        // as openrlhf/utils/remote_rm_utils.py sends it: the decoded sequence (special tokens kept), the prompt, the label
        var request = JsonSerializer.Serialize(new Dictionary<string, string[]>
        {
            ["query"] = [prompt + response + "<|im_end|><|endoftext|><|endoftext|>", prompt + "<answer>No Objects</answer><|im_end|>"],
            ["prompts"] = [prompt, prompt],
            ["labels"] = [solution, solution],
        });
        foreach (var path in new[] { "/get_reward", "/score" })
        {
            var (status, body) = await Post(client, path, request);
            Assert.Equal(HttpStatusCode.OK, status);
            var root = JsonDocument.Parse(body).RootElement;
            var expected = VisualRft.Rewards.Rewards.Detection().Score(response, solution);
            Assert.Equal(expected.Total, root.GetProperty("rewards")[0].GetDouble());
            Assert.Equal(expected.Total, root.GetProperty("scores")[0].GetDouble());
            Assert.Equal(expected["iou"], root.GetProperty("extra_logs").GetProperty("iou")[0].GetDouble());
            Assert.Equal(0.0, root.GetProperty("extra_logs").GetProperty("format")[1].GetDouble());
        }
        var (bad, message) = await Post(client, "/get_reward", """{"query": ["a", "b"], "labels": ["x", 3]}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Contains("\"labels\"[1] must be a string, got int 3", Error(message));
        var (unpaired, why) = await Post(client, "/get_reward", """{"query": ["a", "b"], "labels": ["x"]}""");
        Assert.Equal(HttpStatusCode.BadRequest, unpaired);
        Assert.Contains("\"query\" has 2 items but \"labels\" 1; they are paired", Error(why));
    }

    [Fact]
    public async Task Bodies_batches_and_time_are_bounded()
    {
        var (server, client, _) = await Start(new() { MaxBatch = 100, MaxBodyBytes = 64 << 10 });
        await using var _s = server;
        string item = """{"completion": "<think>x</think><answer>[{'Position': [1, 1, 9, 9], 'Confidence': 0.5}]</answer>", "solution": "<answer>[{'Position': [1, 1, 9, 9], 'Confidence': 1}]</answer>"}""";
        var (tooMany, why) = await Post(client, "/score", "[" + string.Join(",", Enumerable.Repeat(item, 101)) + "]");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooMany);
        Assert.Equal("101 items in one request; at most 100 (--max-batch)", Error(why));
        var (tooLarge, _) = await Post(client, "/score", "[\"" + new string('a', 70_000) + "\"]");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge);
        var (notJson, message) = await Post(client, "/score", "[{\"completion\": ");
        Assert.Equal(HttpStatusCode.BadRequest, notJson);
        Assert.StartsWith("{\"error\":\"invalid JSON", message);
        using var health = await client.GetAsync("/health");
        Assert.Equal("ok", JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());

        var (slow, _c, _l) = await Start(new() { RequestTimeout = TimeSpan.FromMilliseconds(1) });
        await using var _slow = slow;
        var (late, reason) = await Post(_c, "/score", "[" + string.Join(",", Enumerable.Repeat(item, 16_000)) + "]");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, late);
        Assert.Contains("not scored within the request timeout of 0.001 s", Error(reason));
    }

    [Fact]
    public async Task The_command_serves_until_SIGTERM_then_finishes_and_exits_zero()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "serve-rewards", "--port", "0", "--task", "grounding"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        try
        {
            var first = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.StartsWith("listening on http://127.0.0.1:", first);
            using var client = new HttpClient { BaseAddress = new Uri(first!.Split(' ')[2]) };
            var (status, body) = await Post(client, "/score", """[{"completion": "<think>a</think><answer>(120,330),(560,900)</answer>", "solution": "<answer>(120,330),(560,900)</answer>"}]""");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(3.0, JsonDocument.Parse(body).RootElement[0].GetProperty("total").GetDouble());
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) kill.WaitForExit();
            Assert.True(p.WaitForExit(20_000), "still running 20 s after SIGTERM");
            var rest = p.StandardOutput.ReadToEnd();
            Assert.True(p.ExitCode == 0, rest + p.StandardError.ReadToEnd());
            Assert.Contains("POST /score 200 items=1 errors=0", rest);
            Assert.EndsWith("stopped", rest.TrimEnd());
        }
        finally { if (!p.HasExited) p.Kill(); }
    }

    [Fact]
    public void Qwen_end_tokens_after_the_response_are_cut_and_nothing_else()
    {
        Assert.Equal("<answer>a</answer> ", RewardServer.OpenRlhfResponse("P<answer>a</answer> <|im_end|><|endoftext|>", "P"));
        Assert.Equal("Q<answer>a</answer>", RewardServer.OpenRlhfResponse("Q<answer>a</answer>", "P"));
        Assert.Equal("x<|im_end|>y", RewardServer.OpenRlhfResponse("x<|im_end|>y", null));
    }
}
