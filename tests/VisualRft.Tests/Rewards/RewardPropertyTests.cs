using System.Globalization;
using CsCheck;
using VisualRft.Rewards;

namespace VisualRft.Tests.Rewards;

// Inside VisualRft.* the name Rewards binds to the namespace first; the alias picks the factory class.
using Rewards = VisualRft.Rewards.Rewards;

/// <summary>
/// Property tests: for arbitrary strings and arbitrary box lists rendered as completions, scoring never throws and
/// every component stays finite and inside its documented range (the visual-rft exceptions being the NaN/∞
/// confidence literals and the unbounded grounding value, whose proven bound is checked separately); under strict,
/// whitespace outside the tags does not change the score.
/// </summary>
public class RewardPropertyTests
{
    const long Iterations = 400;

    static readonly string[] Pieces =
    [
        "<think>", "</think>", "<answer>", "</answer>", "[", "]", "[[", "]]", "{", "}", "},", "'Position'", "\"Position\"", ": ",
        ", ", "'Confidence'", "0.9", "1.5", "-3", "NaN", "Infinity", "-Infinity", "null", "true", "100", "300", "1e400",
        "(", ")", "(120,330),(560,900)", "No Objects", "\n", " ", "\t", "lotus", " or ", "'", "\"", "BMW", "\u0130", "Σ",
    ];

    static readonly Gen<string> Text = Gen.OneOf(
        Gen.String,
        Gen.OneOf(Pieces).Array[0, 24].Select(p => string.Concat(p)),
        Gen.Select(Gen.String, Gen.OneOf(Pieces).Array[0, 12], (s, p) => string.Concat(p) + s));

    static readonly Gen<(int, int, int, int, double)> BoxGen =
        Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Double[-2, 2]);

    static string RenderBoxes((int X1, int Y1, int X2, int Y2, double C)[] boxes, int style) =>
        "[" + string.Join(", ", boxes.Select(b =>
            $"{{'Position': [{b.X1}, {b.Y1}, {b.X2}, {b.Y2}], 'Confidence': {b.C.ToString("R", CultureInfo.InvariantCulture)}}}")) + "]" switch
        {
            var list when style == 0 => $"<think>boxes</think><answer>{list}</answer>",
            var list when style == 1 => list,                                              // bare list
            var list when style == 2 => $"<think>boxes</think><answer>{list.Replace('\'', '"')}</answer>",
            var list when style == 3 => $"<think>boxes</think><answer>[{list}]</answer>",    // [[ ]]
            var list => $"<think>boxes</think><answer>{list[..^Math.Min(list.Length, 7)]}",  // truncated
        };

    static readonly string[] Solutions =
    [
        "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>",
        "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}, {'Position': [500, 500, 700, 700], 'Confidence': 1}]</answer>",
        "<answer>lotus</answer>", "<answer>2012 BMW M3 Coupe</answer>", "<answer> (120,330),(560,900) </answer>", "<answer>[]</answer>",
    ];

    static readonly TaskReward[] All = [.. from t in Enum.GetValues<VisualTask>() from p in Enum.GetValues<RewardPreset>() select TaskReward.Create(t, p)];

    static void AssertInRange(TaskReward reward, RewardBreakdown r, string completion)
    {
        foreach (var (c, info) in r.Components.Zip(reward.Components))
        {
            if (reward.Preset == RewardPreset.VisualRft && c.Name == "confidence" && !double.IsFinite(c.Value))
            {
                // The documented NaN case: a NaN or ±Infinity literal, a literal that parses to ∞ (1e400), or a
                // confidence sum that overflows (values near ±1e308, which RewardFuzzTests covers).
                Assert.True(completion.Contains("NaN") || completion.Contains("Infinity") || completion.Contains("1e400"),
                    $"{reward.Name}: {c.Name} = {c.Value} for {completion}");
                continue;
            }
            Assert.True(double.IsFinite(c.Value), $"{reward.Name}: {c.Name} = {c.Value} for {completion}");
            Assert.True(c.Value >= info.Min && c.Value <= info.Max, $"{reward.Name}: {c.Name} = {c.Value} outside [{info.Min}, {info.Max}]");
        }
    }

    [Fact]
    public void ArbitraryStringsNeverThrowAndStayInRange() =>
        Gen.Select(Text, Gen.OneOf(Gen.OneOf(Solutions), Text)).Sample((completion, solution) =>
        {
            foreach (var reward in All) AssertInRange(reward, reward.Score(completion, solution), completion);
        }, iter: Iterations, threads: 1);

    [Fact]
    public void ArbitraryBoxListsStayInRangeWithFiniteConfidences() =>
        Gen.Select(BoxGen.Array[0, 6], Gen.Int[0, 4], Gen.OneOf(Solutions[0], Solutions[1])).Sample((boxes, style, solution) =>
        {
            string completion = RenderBoxes(boxes, style);
            foreach (var preset in Enum.GetValues<RewardPreset>())
            {
                var reward = Rewards.Detection(preset);
                var r = reward.Score(completion, solution);
                AssertInRange(reward, r, completion);
                Assert.True(double.IsFinite(r.Total));
            }
        }, iter: Iterations, threads: 1);

    /// <summary>The breakdown's matches are the matching the reward scored: the two formulas of spec §4.5–4.6 worked from
    /// them give the reward's iou and confidence (what the reward view prints), and each match points at a box of the answer.</summary>
    [Fact]
    public void BreakdownMatchesReproduceTheDetectionScores() =>
        Gen.Select(BoxGen.Array[1, 6], Gen.Int[0, 4], Gen.OneOf(Solutions[0], Solutions[1])).Sample((boxes, style, solution) =>
        {
            string completion = RenderBoxes([.. boxes.Select(b => (b.Item1, b.Item2, b.Item3, b.Item4, Math.Abs(b.Item5) / 2))], style);
            int nGt = solution == Solutions[0] ? 1 : 2;
            foreach (var preset in Enum.GetValues<RewardPreset>())
            {
                var r = Rewards.Detection(preset).Score(completion, solution);
                var answer = (VisualRft.Rewards.Parsing.DetectionAnswer)r.Answer;
                if (r.Failure is not null || answer.Boxes.Count == 0) { Assert.Empty(r.Matches); continue; }
                Assert.Equal(answer.Boxes.Count, r.Matches.Count);
                Assert.Equal(Enumerable.Range(0, answer.Boxes.Count), r.Matches.Select(m => m.Prediction).Order());
                double iou = Math.Min(1, r.Matches.Where(m => m.Matched).Sum(m => m.Iou) / Math.Max(nGt, r.Matches.Count));
                double conf = r.Matches.Average(m => m.Matched ? answer.Boxes[m.Prediction].Confidence : 1 - answer.Boxes[m.Prediction].Confidence);
                Assert.Equal(r["iou"], iou, 12);
                Assert.Equal(r["confidence"], Math.Clamp(conf, 0, 1), 12);
            }
        }, iter: Iterations, threads: 1);

    [Fact]
    public void NanConfidencePropagatesUnderVisualRftAndIsRejectedUnderStrict() =>
        Gen.Select(BoxGen.Array[1, 5], Gen.Int[0, 4]).Where((boxes, _) => boxes.DistinctBy(b => (b.Item1, b.Item2, b.Item3, b.Item4)).Count() == boxes.Length)
            .Sample((boxes, at) =>
            {
                at %= boxes.Length;
                string list = "[" + string.Join(", ", boxes.Select((b, i) =>
                    $"{{'Position': [{b.Item1}, {b.Item2}, {b.Item3}, {b.Item4}], 'Confidence': {(i == at ? "NaN" : "0.5")}}}")) + "]";
                string completion = $"<think>x</think><answer>{list}</answer>";
                var official = Rewards.Detection().Score(completion, Solutions[1]);
                Assert.True(double.IsNaN(official["confidence"]) && double.IsNaN(official.Total));
                Assert.True(double.IsFinite(official["iou"]));
                var strict = Rewards.Detection(RewardPreset.Strict).Score(completion, Solutions[1]);
                Assert.Equal((0.0, 0.0), (strict["iou"], strict["confidence"]));
            }, iter: Iterations, threads: 1);

    [Fact]
    public void VisualRftGroundingStaysInsideTheProvenBound() =>
        Gen.Select(Gen.Int[0, 900], Gen.Int[0, 900], Gen.Int[1, 100], Gen.Int[1, 100], Gen.Int[0, 1000].Array[4, 8])
            .Sample((gx, gy, gw, gh, p) =>
            {
                string solution = $"<answer> ({gx},{gy}),({gx + gw},{gy + gh}) </answer>";
                string answer = p.Length >= 8 ? $"({p[0]},{p[1]}),({p[2]},{p[3]}),({p[4]},{p[5]}),({p[6]},{p[7]})" : $"({p[0]},{p[1]}),({p[2]},{p[3]})";
                double v = Rewards.Grounding().Score($"<think>x</think><answer>{answer}</answer>", solution)["giou"];
                double area = gw / 1000.0 * (gh / 1000.0);
                Assert.True(v >= 1 - 1 / area - 1e-9 && v <= 1 + 1 / area + 1e-9, $"{v} outside the bound for area {area}: {answer}");
                double s = Rewards.Grounding(RewardPreset.Strict).Score($"<think>x</think><answer>{answer}</answer>", solution)["giou"];
                Assert.InRange(s, 0, 2);
            }, iter: Iterations, threads: 1);

    static readonly Gen<string> Whitespace = Gen.OneOf(" ", "\n", "\t", "\r\n", "\u00a0", "\u2003", "\x1c").Array[0, 4].Select(string.Concat);

    [Fact]
    public void StrictIgnoresWhitespaceOutsideTheTags() =>
        Gen.Select(Gen.OneOf(Text, BoxGen.Array[0, 4].Select(b => RenderBoxes(b, 0))), Whitespace, Whitespace, Gen.OneOf(Solutions))
            .Sample((completion, before, after, solution) =>
            {
                foreach (var task in Enum.GetValues<VisualTask>())
                {
                    var reward = TaskReward.Create(task, RewardPreset.Strict);
                    var a = reward.Score(completion.Trim(), solution);
                    var b = reward.Score(before + completion.Trim() + after, solution);
                    Assert.Equal(a.Components.Select(c => c.Value), b.Components.Select(c => c.Value));
                }
            }, iter: Iterations, threads: 1);
}
