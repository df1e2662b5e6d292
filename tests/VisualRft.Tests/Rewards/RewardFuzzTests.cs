using System.Globalization;
using System.Text;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using Xunit.Abstractions;

namespace VisualRft.Tests.Rewards;

/// <summary>
/// Seeded fuzzing of every task × preset with hostile completions and solutions (tag soups, box lists with extreme,
/// non-finite, duplicate and malformed values, very long numbers, lone surrogates, Unicode digits …): no exception,
/// every component inside its documented range, strict always finite, and visual-rft non-finite only where the official
/// arithmetic is (a NaN/∞ confidence or a confidence sum that overflows; grounding coordinates so large that the
/// official areas overflow). A modest count runs by default; 10^6 per task and preset behind the heavy flag.
/// </summary>
public partial class RewardFuzzTests(ITestOutputHelper output)
{
    static readonly string[] Pieces =
    [
        "<think>", "</think>", "<answer>", "</answer>", "[", "]", "[[", "]]", "{", "}", "},", "'Position'", "\"Position\"", ": ",
        ", ", "'Confidence'", "\"Confidence\"", "0.9", "1.5", "-3", "NaN", "Infinity", "-Infinity", "null", "true", "100", "300",
        "1e308", "-1e308", "1e400", "(", ")", "(120,330),(560,900)", "No Objects", "\n", " ", "\t", "\r", "lotus", " or ", "'",
        "\"", "BMW", "\u0130", "Σ", "\ud800", "\udc00", "\x1c", "\u0663", "\\u00e9", "{'a': 1, 'a': 2}",
    ];

    static readonly Dictionary<VisualTask, string[]> Solutions = new()
    {
        [VisualTask.Detection] =
        [
            "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}]</answer>",
            "<answer>[{'Position': [100, 100, 300, 300], 'Confidence': 1}, {'Position': [500, 500, 700, 700], 'Confidence': 1}]</answer>",
            "<answer>[]</answer>", "<answer>No Objects</answer>",
        ],
        [VisualTask.Classification] = ["<answer>lotus</answer>", "<answer>2012 BMW M3 Coupe</answer>", "<answer>globe-flower</answer>", "<answer></answer>"],
        [VisualTask.Grounding] = ["<answer> (120,330),(560,900) </answer>", "<answer>(0,0),(1000,1000)</answer>", "<answer>(5,5),(5,900)</answer>"],
    };

    /// <summary>A number as a model (or an attacker) might write it.</summary>
    static string Number(Random r) => r.Next(10) switch
    {
        0 => r.Next(-5, 5).ToString(CultureInfo.InvariantCulture),
        1 => r.NextDouble().ToString("R", CultureInfo.InvariantCulture),
        2 => new[] { "NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1.7976931348623157e308", "5e-324", "-0", "true", "null", "'0.5'" }[r.Next(11)],
        3 => Digits(r, 1 + r.Next(r.Next(2) == 0 ? 20 : 400)),
        4 => (r.NextDouble() * 4 - 2).ToString("R", CultureInfo.InvariantCulture),
        _ => r.Next(0, 1001).ToString(CultureInfo.InvariantCulture),
    };

    static string Digits(Random r, int n)
    {
        var c = new char[n];
        for (int i = 0; i < n; i++) c[i] = (char)('0' + r.Next(10));
        if (n > 1 && c[0] == '0') c[0] = '1';
        return new string(c);
    }

    static string Box(Random r)
    {
        string q = r.Next(4) == 0 ? "\"" : "'";
        var pos = string.Join(", ", Enumerable.Range(0, r.Next(8) == 0 ? r.Next(7) : 4).Select(_ => Number(r)));
        var parts = new List<string> { $"{q}Position{q}: [{(r.Next(10) == 0 ? "[" + pos + "]" : pos)}]", $"{q}Confidence{q}: {Number(r)}" };
        if (r.Next(10) == 0) parts.RemoveAt(r.Next(parts.Count));
        if (r.Next(10) == 0) parts.Add($"{q}Position{q}: [1, 2, 3, 4]");
        return "{" + string.Join(", ", parts) + "}";
    }

    static string Soup(Random r, int max) => string.Concat(Enumerable.Range(0, r.Next(max)).Select(_ => Pieces[r.Next(Pieces.Length)]));

    static string RandomText(Random r)
    {
        var sb = new StringBuilder();
        for (int i = r.Next(40); i > 0; i--) sb.Append((char)r.Next(r.Next(3) == 0 ? 0x10000 : 0x80));
        return sb.ToString();
    }

    /// <summary>One completion (or solution) for <paramref name="task"/>: structured answers with hostile values, or soup.</summary>
    static string Text(Random r, VisualTask task)
    {
        string answer = r.Next(6) switch
        {
            0 => Soup(r, 30),
            1 => RandomText(r),
            _ => task switch
            {
                VisualTask.Detection => BoxList(r),
                VisualTask.Grounding => string.Join(r.Next(2) == 0 ? "," : " and ", Enumerable.Range(0, 1 + r.Next(r.Next(4) == 0 ? 4 : 1))
                    .Select(_ => $"({Coordinate(r)},{Coordinate(r)}),({Coordinate(r)},{Coordinate(r)})")),
                _ => new[] { "lotus", "Lotus", "globe flower", "globe-flower", "rose or lotus", "BMW", "", "ΣΑΣ", "\u0130stanbul", "A", "lotus\nrose" }[r.Next(11)],
            },
        };
        return r.Next(5) switch
        {
            0 => answer,
            1 => $"<think>{Soup(r, 4)}</think><answer>{answer}",
            2 => $"{Soup(r, 3)}<think>x</think>{(r.Next(2) == 0 ? " \n" : "")}<answer>{answer}</answer>{Soup(r, 3)}",
            _ => $"<think>{RandomText(r)}</think><answer>{answer}</answer>",
        };
    }

    static string BoxList(Random r)
    {
        var boxes = Enumerable.Range(0, r.Next(8)).Select(_ => Box(r)).ToList();
        if (boxes.Count > 0 && r.Next(4) == 0) boxes.Add(boxes[0]);   // an exact duplicate
        var list = "[" + string.Join(", ", boxes) + "]";
        return r.Next(6) switch { 0 => list[..r.Next(list.Length + 1)], 1 => "[" + list + "]", _ => list };
    }

    static string Coordinate(Random r) => r.Next(8) switch
    {
        0 => Digits(r, 1 + r.Next(400)),
        1 => "\u0663\u0660\u0660",                        // Unicode digits (Python's \d takes them)
        2 => r.NextDouble().ToString("F2", CultureInfo.InvariantCulture),
        _ => r.Next(0, 1001).ToString(CultureInfo.InvariantCulture),
    };

    sealed record Counts(VisualTask Task, RewardPreset Preset)
    {
        public long Inputs, Exceptions, NonFinite, Undocumented, OutOfRange;
        public string? Example;
    }

    /// <summary>Non-finite visual-rft values that the official arithmetic also produces (see the reward classes).</summary>
    static bool Documented(TaskReward reward, string component, string completion, string solution) => (reward.Task, component) switch
    {
        // A NaN or ∞ literal, or a number of 10^300 or more whose terms can overflow the sum (any element's confidence
        // counts: with an empty ground truth no position is ever unpacked).
        (VisualTask.Detection, "confidence") => HugeOrNonFinite().IsMatch(completion),
        (VisualTask.Grounding, "giou") => new[] { completion, solution }.Any(t =>
            Answers.ParseGrounding(t, RewardPreset.VisualRft).Box is { } b && new[] { b.X1, b.Y1, b.X2, b.Y2 }.Max(Math.Abs) > 1e150),
        _ => false,
    };

    [System.Text.RegularExpressions.GeneratedRegex(@"NaN|Infinity|[0-9]{301}|[eE]\+?3[0-9][0-9]|[eE]\+?[4-9][0-9][0-9]")]
    private static partial System.Text.RegularExpressions.Regex HugeOrNonFinite();

    static Counts Fuzz(VisualTask task, RewardPreset preset, long inputs, int seed)
    {
        var reward = TaskReward.Create(task, preset);
        var counts = new Counts(task, preset);
        var r = new Random(seed);
        for (long i = 0; i < inputs; i++)
        {
            string completion = Text(r, task);
            string solution = r.Next(3) == 0 ? Text(r, task) : Solutions[task][r.Next(Solutions[task].Length)];
            counts.Inputs++;
            RewardBreakdown result;
            try { result = reward.Score(completion, solution); }
            catch (Exception e)
            {
                counts.Exceptions++;
                counts.Example ??= $"{e.GetType().Name} on {completion}";
                continue;
            }
            foreach (var (c, info) in result.Components.Zip(reward.Components))
            {
                if (!double.IsFinite(c.Value))
                {
                    counts.NonFinite++;
                    if (preset == RewardPreset.Strict || !Documented(reward, c.Name, completion, solution))
                    {
                        counts.Undocumented++;
                        counts.Example ??= $"{c.Name} = {c.Value} for {completion} / {solution}";
                    }
                }
                else if (c.Value < info.Min || c.Value > info.Max)
                {
                    counts.OutOfRange++;
                    counts.Example ??= $"{c.Name} = {c.Value} outside [{info.Min}, {info.Max}] for {completion}";
                }
            }
        }
        return counts;
    }

    void Run(long perCombination)
    {
        var all = (from t in Enum.GetValues<VisualTask>() from p in Enum.GetValues<RewardPreset>() select (t, p)).ToArray();
        var results = all.AsParallel().AsOrdered().Select(x => Fuzz(x.t, x.p, perCombination, seed: 1000 * (int)x.t + (int)x.p)).ToList();
        output.WriteLine("task/preset: inputs, exceptions, non-finite (undocumented), out of range");
        foreach (var c in results)
            output.WriteLine($"{c.Task}/{c.Preset}: {c.Inputs:N0}, {c.Exceptions}, {c.NonFinite} ({c.Undocumented}), {c.OutOfRange}");
        foreach (var c in results)
        {
            Assert.True(c.Exceptions == 0 && c.Undocumented == 0 && c.OutOfRange == 0, $"{c.Task}/{c.Preset}: {c.Example}");
            if (c.Preset == RewardPreset.Strict) Assert.Equal(0, c.NonFinite);
        }
    }

    [Fact]
    public void Fuzzed_completions_never_throw_and_stay_in_range() => Run(3_000);

    [Fact]
    [Trait("Category", "Heavy")]
    public void A_million_fuzzed_completions_per_task_and_preset() => Run(1_000_000);
}
