using VisualRft.Experiments;
using Xunit.Abstractions;

namespace VisualRft.Tests.Experiments;

/// <summary>
/// The tiny-scale table runners end to end. The default run has the lightest (Table 6, a few steps on a few images);
/// the full-size runs, whose rows the report quotes, are heavy.
/// </summary>
public class TinyTablesTests(ITestOutputHelper output)
{
    static readonly TinyTableOptions Smoke = new()
    {
        Recipe = TinyRecipe.Default with { RftSteps = 2, SftSteps = 2, EvalMaxNewTokens = 24 }, Shots = 8, TestPerCategory = 1,
    };

    static void CheckShape(TableComparison t)
    {
        Assert.Equal(t.Paper.Columns[0], t.ColumnPairs[0].Paper);
        Assert.All(t.PaperRows, r => Assert.Equal(t.Paper.Columns.Count, r.Values.Count));
        Assert.All(t.ToMarkdown().Split('\n').Where(l => l.StartsWith('|')), l => Assert.Equal(t.ColumnPairs.Count + 2, l.Count(ch => ch == '|')));
        Assert.Contains(t.Measured, r => r.Kind == RowKind.Baseline);
        Assert.Contains(t.Measured, r => r.Kind == RowKind.Sft);
        Assert.Contains(t.Measured, r => r.Kind == RowKind.VisualRft);
        foreach (var r in t.Measured)
        {
            Assert.Equal(t.Columns.Count, r.Values.Count);
            Assert.All(r.Values, v => Assert.True(v is { } x && double.IsFinite(x), $"{r.Model}: {string.Join(", ", r.Values)}"));
        }
        var delta = t.Row(RowKind.Delta).Values;
        for (int c = 0; c < t.Columns.Count; c++)
            Assert.Equal(t.Row(RowKind.VisualRft).Values[c]!.Value - t.Row(RowKind.Baseline).Values[c]!.Value, delta[c]!.Value, 9);
        Assert.NotEmpty(t.PaperRows);
        Assert.Contains("steps", t.Settings["Visual-RFT"]);
    }

    [Fact]
    public void Table6_grounding_runs_end_to_end()
    {
        var t = TinyTables.Table6(Smoke);
        output.WriteLine(t.ToMarkdown());
        CheckShape(t);
        Assert.All(t.Measured.Where(r => r.Kind != RowKind.Delta).SelectMany(r => r.Values), v => Assert.InRange(v!.Value, 0, 100));
        Assert.Equal(4, t.PaperRows.Count);   // 2B baseline, +SFT, +Visual-RFT, Δ
    }

    [Fact]
    public void Classification_reports_carry_both_accuracies()
    {
        using var policy = VisualRft.TinyModel.TinyQwen2Vl.Pretrained();
        var data = VisualRft.Data.SyntheticDatasets.Load("shapes-classification", shots: 1, testSize: 1);
        var r = VisualRft.Evaluation.PolicyEvaluator.Evaluate(policy, data.Test.Take(4).ToList(),
            VisualRft.Rewards.TaskReward.Create(VisualRft.VisualTask.Classification), "tiny", maxNewTokens: 24);
        Assert.NotNull(r.Accuracy);
        Assert.NotNull(r.StrictAccuracy);
        Assert.True(r.StrictAccuracy <= r.Accuracy);   // an exact match is also a substring match
    }

    /// <summary>Full tiny-scale runs (minutes each on 2 cores): the measured rows of the report.</summary>
    [Theory, Trait("Category", "Heavy")]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Tiny_table_at_full_size(int number)
    {
        var t = TinyTables.Run(number, log: output.WriteLine);
        output.WriteLine(t.ToMarkdown());
        CheckShape(t);
        Write(t);
    }

    [Fact, Trait("Category", "Heavy")]
    public void Tables_7_and_8_share_one_open_vocabulary_run()
    {
        var (t7, t8) = TinyTables.OpenVocabulary(log: output.WriteLine);
        foreach (var t in new[] { t7, t8 })
        {
            output.WriteLine(t.ToMarkdown());
            CheckShape(t);
            Write(t);
        }
    }

    /// <summary>VRFT_TABLES_OUT=folder keeps each measured table as Markdown.</summary>
    static void Write(TableComparison t)
    {
        if (Environment.GetEnvironmentVariable("VRFT_TABLES_OUT") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, $"table{t.Paper.Number}.md"), t.ToMarkdown());
        }
    }
}

/// <summary>The tiny tables' scoring, without a model: perfect answers score 100 and empty answers 0 in every metric.</summary>
public class TinyTableScoringTests
{
    static List<VisualRft.Evaluation.EvaluatedSample> Answered(IReadOnlyList<VisualRft.Data.VisualSample> samples, VisualRft.VisualTask task, Func<VisualRft.Data.VisualSample, string> answer)
    {
        var reward = VisualRft.Rewards.TaskReward.Create(task, VisualRft.Rewards.RewardPreset.VisualRft);
        return [.. samples.Select(s => new VisualRft.Evaluation.EvaluatedSample(s, answer(s), reward.Score(answer(s), s.Solution)))];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Detection_perfect_and_silent_models(bool lvis)
    {
        var data = VisualRft.Data.SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 3);
        var cats = data.Manifest.NovelCategories;
        var perfect = TinyTables.DetectionScores(Answered(data.Test, VisualRft.VisualTask.Detection, s => "<think>ok</think>" + s.Solution), cats, lvis);
        Assert.All(cats, c => Assert.InRange(perfect.PaperAp(perfect[c]), 100 - 1e-9, 100));
        var silent = TinyTables.DetectionScores(Answered(data.Test, VisualRft.VisualTask.Detection, _ => "<think>ok</think><answer>No Objects</answer>"), cats, lvis);
        Assert.Equal(0, silent.PaperMeanAp(cats));
    }

    [Fact]
    public void Classification_by_family_under_both_rules()
    {
        var data = VisualRft.Data.SyntheticDatasets.Load("shapes-classification", shots: 1, testSize: 2);
        var right = Answered(data.Test, VisualRft.VisualTask.Classification, s => $"<think>ok</think><answer>{s.Category}</answer>");
        Assert.Equal([100.0, 100, 100, 100, 100], TinyTables.FamilyAccuracy(right, VisualRft.Evaluation.ClassMatchRule.Exact));
        // "circle" names no class, yet the substring rule counts it right for every circle class: the leniency of spec §4.8.
        var vague = Answered(data.Test, VisualRft.VisualTask.Classification, s => $"<think>ok</think><answer>{s.Category.Split(' ')[^1]}</answer>");
        Assert.Equal([100.0, 100, 100, 100, 100], TinyTables.FamilyAccuracy(vague, VisualRft.Evaluation.ClassMatchRule.PaperSubstring));
        Assert.Equal([0.0, 0, 0, 0, 0], TinyTables.FamilyAccuracy(vague, VisualRft.Evaluation.ClassMatchRule.Exact));
    }

    [Fact]
    public void Grounding_mIoU_and_box_mask_gIoU()
    {
        var data = VisualRft.Data.SyntheticDatasets.Load("shapes-grounding", shots: 1, testSize: 4);
        var perfect = Answered(data.Test, VisualRft.VisualTask.Grounding, s => "<think>ok</think>" + s.Solution);
        var scores = TinyTables.GroundingScores(perfect, perfect);
        Assert.InRange(scores[0]!.Value, 99.99, 100);
        Assert.InRange(scores[2]!.Value, 90, 100);   // 0–1000 rounding moves mask edges by a pixel at most
        var none = Answered(data.Test, VisualRft.VisualTask.Grounding, _ => "<think>ok</think><answer>none</answer>");
        Assert.Equal([0.0, 0, 0], TinyTables.GroundingScores(none, none));
    }
}
