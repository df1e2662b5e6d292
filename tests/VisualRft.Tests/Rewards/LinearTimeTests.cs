using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text;
using VisualRft.Rewards;
using Xunit.Abstractions;

namespace VisualRft.Tests.Rewards;

/// <summary>
/// The pathological shapes of issue 12 (many boxes, many keys, duplicate and NaN-confidence boxes, tag soups, unclosed
/// answers, long whitespace runs, long class names) cost time linear (or n log n) in their size: the growth from
/// 10^3 to 10^4 units must stay under 30× (a quadratic reader shows ~100×). A ratio, not an absolute time; each size
/// is the minimum of several repetitions, and a shape is measured again before it fails, for a noisy 2-core machine.
/// </summary>
[Collection(nameof(LinearTimeTests))]
public class LinearTimeTests(ITestOutputHelper output)
{
    const string Gt = "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>";
    const string GroundingGt = "<answer> (120,330),(560,900) </answer>";

    static string Repeat(string unit, int n) => new StringBuilder(unit.Length * n).Insert(0, unit, n).ToString();

    static string Boxes(int n, Func<int, string> confidence) => "<think>x</think><answer>[" + string.Join(", ", Enumerable.Range(0, n).Select(i =>
        $"{{'Position': [{i % 500}, {i * 7 % 500}, {500 + i % 499}, {500 + i * 3 % 499}], 'Confidence': {confidence(i)}}}")) + "]</answer>";

    /// <summary>Shape name → (task, completion of n units, solution).</summary>
    static readonly Dictionary<string, (VisualTask Task, Func<int, string> Completion, Func<int, string> Solution)> Shapes = new()
    {
        ["distinct boxes"] = (VisualTask.Detection, n => Boxes(n, i => (i % 97 / 97.0).ToString("R", System.Globalization.CultureInfo.InvariantCulture)), _ => Gt),
        ["boxes with NaN confidences"] = (VisualTask.Detection, n => Boxes(n, i => i % 3 == 0 ? "NaN" : "0.5"), _ => Gt),
        ["duplicate boxes"] = (VisualTask.Detection, n => "<answer>[" + string.Join(", ", Enumerable.Repeat("{'Position': [1, 2, 3, 4], 'Confidence': 0.5}", n)) + "]</answer>", _ => Gt),
        ["distinct keys"] = (VisualTask.Detection, n => "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 0.9, "
            + string.Join(", ", Enumerable.Range(0, n).Select(i => $"'k{i}': 1")) + "}]</answer>", _ => Gt),
        ["detection tag soup"] = (VisualTask.Detection, n => Repeat("<think><answer>", n), _ => Gt),
        ["classification tag soup"] = (VisualTask.Classification, n => Repeat("<think><answer>", n), _ => "<answer>lotus</answer>"),
        ["grounding tag soup"] = (VisualTask.Grounding, n => Repeat("<think><answer>", n), _ => GroundingGt),
        ["closing-tag soup"] = (VisualTask.Detection, n => "<think>" + Repeat("</think>x", n) + "</answer>", _ => Gt),
        ["unclosed answers on many lines"] = (VisualTask.Classification, n => Repeat("<answer>lotus\n", n) + "</answer>", _ => "<answer>lotus</answer>"),
        ["grounding boxes"] = (VisualTask.Grounding, n => "<answer>" + Repeat("(1,2),(300,400),", n) + "</answer>", _ => GroundingGt),
        ["whitespace after No Objects"] = (VisualTask.Detection, n => "<answer>no objects" + Repeat("          ", n) + "x</answer>", _ => Gt),
        // The solution almost occurs in the answer at every position: a naive substring search is quadratic.
        ["long class names"] = (VisualTask.Classification, n => "<answer>" + Repeat("aaaaaaaaaa", n) + "</answer>",
            n => "<answer>" + Repeat("aaaaa", n / 2) + "b" + Repeat("aaaaa", n / 2) + "</answer>"),
    };

    public static TheoryData<string, RewardPreset> Cases()
    {
        var data = new TheoryData<string, RewardPreset>();
        foreach (var name in Shapes.Keys)
            foreach (var preset in Enum.GetValues<RewardPreset>()) data.Add(name, preset);
        return data;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Timespec { public long Seconds, Nanoseconds; }

    [DllImport("libc")]
    static extern int clock_gettime(int clock, out Timespec time);

    /// <summary>CPU seconds of this thread (Linux CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not grow while
    /// other builds on the machine hold the cores. Elsewhere, wall time.</summary>
    static double ThreadSeconds()
    {
        try { return clock_gettime(3, out var t) == 0 ? t.Seconds + t.Nanoseconds * 1e-9 : Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency; }
    }

    /// <summary>One timed run. Garbage collections are kept out of it where the runtime allows: what they cost depends
    /// on the heap (other tests, large-object thresholds), not on the parser's complexity.</summary>
    static double Seconds(TaskReward reward, string completion, string solution)
    {
        GC.Collect();
        bool noGc;
        try { noGc = GC.TryStartNoGCRegion(256L << 20); }
        catch (ArgumentOutOfRangeException) { noGc = false; }
        double start = ThreadSeconds();
        reward.Score(completion, solution);
        double seconds = ThreadSeconds() - start;
        if (noGc && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        return seconds;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Ten_times_the_input_costs_less_than_thirty_times_the_time(string shape, RewardPreset preset)
    {
        var (task, completion, solution) = Shapes[shape];
        var reward = TaskReward.Create(task, preset);
        string small = completion(1_000), large = completion(10_000);
        string smallSolution = solution(1_000), largeSolution = solution(10_000);
        // Rounds alternate the sizes and each size keeps its fastest run, so the early rounds (code not yet optimised by
        // the tiered JIT) and any disturbed run drop out.
        double ratio = double.MaxValue, tSmall = double.MaxValue, tLarge = double.MaxValue;
        for (int attempt = 0; attempt < 3 && ratio >= 30; attempt++)
        {
            for (int round = 0; round < 10; round++)
            {
                tSmall = Math.Min(tSmall, Seconds(reward, small, smallSolution));
                tLarge = Math.Min(tLarge, Seconds(reward, large, largeSolution));
            }
            ratio = tLarge / Math.Max(tSmall, 1e-7);
        }
        output.WriteLine($"{shape} ({reward.Name}): 10^3 {tSmall * 1e3:F3} ms, 10^4 {tLarge * 1e3:F3} ms, ratio {ratio:F1}");
        Assert.True(ratio < 30, $"{shape} under {reward.Name}: 10× the input took {ratio:F0}× the time ({tSmall * 1e3:F2} → {tLarge * 1e3:F2} ms)");
    }
}

/// <summary>Timings run alone, not beside other test classes that load the cores and the garbage collector.</summary>
[CollectionDefinition(nameof(LinearTimeTests), DisableParallelization = true)]
public sealed class LinearTimeCollection;
