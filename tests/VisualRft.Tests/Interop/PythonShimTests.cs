using System.Diagnostics;

namespace VisualRft.Tests.Interop;

/// <summary>
/// Runs interop/tests/test_shims.py with Debian's python3 (scripts/install-notebook-client.sh installs it with the rest of the test client): the verl, EasyR1 and
/// TRL shims equal <c>vrft score</c> on every scorable line of examples/ and a seeded fuzz corpus, through the reward
/// server and through the <c>vrft score</c> pipe, with a 1,000-item batch and an item that cannot be scored.
/// </summary>
public class PythonShimTests
{
    const string Python = "/usr/bin/python3";

    [Fact]
    public async Task The_shims_equal_vrft_score_line_for_line()
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: run scripts/install-notebook-client.sh");
        var start = new ProcessStartInfo(Python, ["-m", "unittest", "discover", "-s", Path.Combine(Golden.RepoRoot, "interop", "tests"), "-v"])
            { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Golden.RepoRoot };
        start.Environment["VRFT_CLI"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "vrft.dll")}";
        start.Environment.Remove("VRFT_REWARD_URL");
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();   // unittest reports on stderr
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(limit.Token);
        Assert.True(p.ExitCode == 0, stderr + await stdout);
        Assert.Contains("Ran 8 tests", stderr);
        Assert.EndsWith("OK", stderr.TrimEnd());
    }

    [Fact]
    public void The_shims_lie_beside_vrft_as_in_the_tool_package()
    {
        // the Cli project copies interop/ (tests excluded) to its output and publish folders, which the tool package holds
        foreach (var file in new[] { "visualrft_client.py", "verl/visualrft_reward.py", "easyr1/visualrft_reward.py", "trl/visualrft_rewards.py", "README.md" })
            Assert.Equal(File.ReadAllText(Path.Combine(Golden.RepoRoot, "interop", file)), File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "interop", file)));
        Assert.False(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "interop", "tests")));
    }
}
