using System.CommandLine;
using VisualRft.Cli;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Experiments;
using VisualRft.Geometry;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Training;

namespace VisualRft.Tests.Experiments;

/// <summary>
/// The tiny analogue's design (issue 16): what the base model has never seen, the failures its pre-training data has on
/// purpose, the seeds and splits of a comparison, the learnability check's rules and the statistics over seeds.
/// </summary>
public class TinyAnalogueTests
{
    static readonly IReadOnlyList<string> TestCategories =
    [
        .. SyntheticDatasets.Manifest("shapes-detection").NovelCategories,
        .. SyntheticDatasets.Manifest("shapes-ovd").NovelCategories,
    ];

    [Fact]
    public void Pretraining_never_shows_a_test_category_but_every_word()
    {
        var card = TinyQwen2Vl.Card();
        var seen = card.Seen["detection categories"];
        Assert.Empty(seen.Intersect(TestCategories));
        foreach (var options in new TinyPretrainOptions().Stages.SelectMany(s => s.Data))
        {
            var m = SyntheticDatasets.Manifest(options.Dataset);
            Assert.Empty(m.CategoriesOf(CategorySelection.All).Intersect(TestCategories));   // not even as a distractor
            Assert.Empty(m.CategoriesOf(CategorySelection.All).Intersect(SyntheticDatasets.Manifest("shapes-classification").BaseCategories));
        }
        // Every colour and shape word of the test categories is in some pre-training category.
        foreach (var c in TestCategories)
        {
            ShapeVocabulary.TrySplit(c, out var colour, out var shape);
            Assert.Contains(seen, s => s.StartsWith(colour + " ", StringComparison.Ordinal));
            Assert.Contains(seen, s => s.EndsWith(" " + shape, StringComparison.Ordinal));
        }
        foreach (var c in SyntheticDatasets.Manifest("shapes-classification").BaseCategories)
        {
            var (attribute, shape) = (c[..c.LastIndexOf(' ')], c[(c.LastIndexOf(' ') + 1)..]);
            Assert.Contains(card.Seen["classification classes"], s => s.StartsWith(attribute + " ", StringComparison.Ordinal));
        }
        Assert.Equal(["smallest-colour", "largest-shape"], card.Unseen["grounding relations (Table 6)"]);
        Assert.Contains("Never seen labelled", ExperimentViewsText(card));
    }

    static string ExperimentViewsText(TinyModelCard card) => VisualRft.Views.Render.Of(card).Html;

    [Fact]
    public void Pretraining_answers_carry_confidences_that_rank_and_slip_the_format()
    {
        var data = SyntheticDatasets.Load("shapes-pretrain", shots: 60, testSize: 1);
        var faded = data.Train.Where(s => int.Parse(s.Metadata["faded targets"]) > 0).ToList();
        var clear = data.Train.Where(s => s.Metadata["faded targets"] == "0").ToList();
        Assert.NotEmpty(faded);
        Assert.All(clear, s => Assert.DoesNotContain("'Confidence': 0.", s.Solution));
        Assert.All(faded, s => Assert.Matches(@"'Confidence': 0\.[4-7]\d", s.Solution));
        var withoutThink = data.Train.Count(s => SftTrainer.Target(s).StartsWith("<answer>", StringComparison.Ordinal));
        Assert.InRange(withoutThink / (double)data.Train.Count, 0.10, 0.20);
        Assert.InRange(data.Train.Count(s => s.Boxes.Count > 1) / (double)data.Train.Count, 0.07, 0.17);   // under-reporting
        // The paper's few-shot data: every box confidence 1, every target a think block, 40 % multi-target scenes.
        var few = SyntheticDatasets.Load("shapes-detection", shots: 8, testSize: 1);
        Assert.All(few.Train, s => Assert.DoesNotContain("'Confidence': 0.", s.Solution));
        Assert.All(few.Train, s => Assert.StartsWith("<think>", SftTrainer.Target(s)));
        Assert.Contains(few.Train, s => int.Parse(s.Metadata["faded targets"]) > 0);
    }

    [Fact]
    public void Classification_names_never_contain_one_another()
    {
        var names = ClassificationGenerator.ClassNames.Select(n => n.Replace(" ", "")).ToList();
        for (int i = 0; i < names.Count; i++)
            for (int j = 0; j < names.Count; j++)
                if (i != j) Assert.DoesNotContain(names[j], names[i]);
        Assert.Empty(ClassificationGenerator.TableClasses.Intersect(ClassificationGenerator.PretrainingClasses));
    }

    [Fact]
    public void A_seed_draws_its_own_training_images_and_every_seed_meets_the_same_held_out_images()
    {
        var m = SyntheticDatasets.Manifest("shapes-detection");
        var a = FewShotDetection.Train(m, 4, 1);
        var b = FewShotDetection.Train(m, 4, 2);
        Assert.NotEqual(SyntheticDataset.FingerprintOf(a), SyntheticDataset.FingerprintOf(b));
        Assert.Equal(SyntheticDataset.FingerprintOf(a), SyntheticDataset.FingerprintOf(FewShotDetection.Train(m, 4, 1)));
        var test = FewShotDetection.HeldOut(m, HeldOutSplit.Test, 4);
        var val = FewShotDetection.HeldOut(m, HeldOutSplit.Validation, 4);
        var prints = (IReadOnlyList<VisualSample> s) => s.Select(x => SyntheticDataset.FingerprintOf([x])).ToHashSet();
        Assert.Empty(prints(test).Intersect(prints(val)));
        Assert.Empty(prints(test).Intersect(prints(a)));
        Assert.Empty(prints(val).Intersect(prints(b)));
        Assert.Equal(32, test.Count);
        Assert.Equal(m.NovelCategories, test.Select(s => s.Category).Distinct());
        // The count a run reports is the set it trains on, at any shot count (16 shots once reported 32 images).
        Assert.Equal(a.Count, FewShotDetection.TrainCount(m, 4));
        Assert.Equal(FewShotDetection.Train(m, 16, 1).Count, FewShotDetection.TrainCount(m, 16));
    }

    [Fact]
    public void Rows_over_seeds_are_means_with_their_sample_sd()
    {
        var rows = TableComparison.Rows([10.0, 1], [[12.0, 2], [14.0, 4]], [[20.0, 3], [16.0, 5]]);
        var rft = rows.Single(r => r.Kind == RowKind.VisualRft);
        Assert.Equal([18.0, 4], rft.Values);
        Assert.Equal(Math.Sqrt(8), rft.Sd![0]!.Value, 12);
        Assert.Equal(2, rft.PerSeed!.Count);
        Assert.Equal([8.0, 3], rows.Single(r => r.Kind == RowKind.Delta).Values);
        Assert.Null(rows.Single(r => r.Kind == RowKind.Baseline).Sd);
        Assert.Null(TableComparison.Rows([1.0], [2.0], [3.0]).Single(r => r.Kind == RowKind.Sft).Sd);   // one seed: no spread
        Assert.Equal(new MeanSd(2, 1, 3), MeanSd.Of([1, 2, 3]));
        Assert.Equal("2.0 ± 1.0", new MeanSd(2, 1, 3).Format());
    }

    static LearnabilityReport Rates(double pass1, double passG, double zeroStd, double target, double distractor, double format = 0) =>
        Diagnostics.Judge(new LearnabilityReport(VisualTask.Detection, 8, pass1, pass1, passG, zeroStd, target, distractor, format, 0.5, false, "", [], []));

    [Fact]
    public void The_learnability_verdict_follows_the_rates()
    {
        var good = Rates(pass1: 0.35, passG: 0.85, zeroStd: 0.15, target: 0.35, distractor: 0.1);
        Assert.True(good.Learnable);
        Assert.StartsWith("GRPO has signal on 85 % of prompts", good.Verdict);
        var lucky = Rates(pass1: 0.1, passG: 0.3, zeroStd: 0.4, target: 0.1, distractor: 0.2);
        Assert.False(lucky.Learnable);
        Assert.Contains(lucky.Findings, f => f.Contains("the reward has no direction"));
        // the verdict names what is wrong, not a finding in the model's favour
        var sampledButUndirected = Rates(pass1: 0.24, passG: 0.56, zeroStd: 0.1, target: 0.2, distractor: 0.3);
        Assert.False(sampledButUndirected.Learnable);
        Assert.Contains("the reward has no direction", sampledButUndirected.Verdict);
        Assert.Contains("zero advantages", Rates(pass1: 0.3, passG: 0.6, zeroStd: 0.7, target: 0.3, distractor: 0.1).Verdict);
        var hopeless = Rates(pass1: 0.01, passG: 0.05, zeroStd: 0.9, target: 0.01, distractor: 0);
        Assert.False(hopeless.Learnable);
        Assert.Contains("nothing to amplify", hopeless.Verdict);
        Assert.Contains(Rates(0.4, 0.9, 0.1, 0.4, 0.1, format: 0.2).Findings, f => f.Contains("break the format"));
    }

    [Fact]
    public void A_hit_is_a_box_on_a_target_and_a_box_on_a_distractor_is_counted_apart()
    {
        var s = SyntheticDatasets.Load("shapes-detection", shots: 4, testSize: 1).Train.First(x => x.Objects.Any(o => o.Category != x.Category));
        var frames = new ImageFrames(new ImageSize(s.Width, s.Height), new ImageSize(s.Width, s.Height));
        var distractor = s.Objects.First(o => o.Category != s.Category).Box.ToQwen1000(s.Width, s.Height);
        var onTarget = "<think>x</think>" + s.Solution;
        var onDistractor = $"<think>x</think><answer>[{{'Position': [{distractor.X1}, {distractor.Y1}, {distractor.X2}, {distractor.Y2}], 'Confidence': 1}}]</answer>";
        Assert.Equal((true, false), Diagnostics.Look(onTarget, s, CoordinateFrame.Normalized1000, frames, RewardPreset.VisualRft));
        Assert.Equal((false, true), Diagnostics.Look(onDistractor, s, CoordinateFrame.Normalized1000, frames, RewardPreset.VisualRft));
        Assert.Equal((false, false), Diagnostics.Look("<think>x</think><answer>No Objects</answer>", s, CoordinateFrame.Normalized1000, frames, RewardPreset.VisualRft));
    }

    [Fact]
    public void Learnability_on_the_tiny_model_is_consistent()
    {
        using var oneThread = BitForBit.OneThread();
        using var policy = TinyQwen2Vl.Pretrained();
        var samples = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1).Train.Take(3).ToList();
        var r = Diagnostics.Learnability(policy, samples, VisualRft.Rewards.Rewards.Detection(), g: 4, maxNewTokens: 48);
        Assert.Equal(3, r.Prompts.Count);
        Assert.All(r.Prompts, p => Assert.InRange(p.Hits, 0, 4));
        Assert.InRange(r.Pass1, 0, r.PassG);
        Assert.Equal(r.Prompts.Count(p => p.ZeroStd) / 3.0, r.ZeroStdShare, 12);
        Assert.False(string.IsNullOrEmpty(r.Verdict));
        Assert.Equal(r.Prompts, Diagnostics.Learnability(policy, samples, VisualRft.Rewards.Rewards.Detection(), g: 4, maxNewTokens: 48).Prompts);   // seeded
        Assert.Contains("Learnability check", VisualRft.Views.Render.Of(r).Html);
    }

    [Theory]
    [InlineData("--seeds", "0", "option --seeds: must be between 1 and")]
    [InlineData("--seed", "-1", "option --seed: must be between 0 and")]
    [InlineData("--split", "train", "vrft quickstart: Argument 'train' not recognized")]
    [InlineData("--beta", "-1", "option --beta: must be a finite number ≥ 0")]
    public void Quickstart_checks_its_seed_and_split_options(string option, string value, string says)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var exit = VrftCommandLine.Run(["quickstart", option, value, "--out", Path.Combine(Path.GetTempPath(), "vrft-seeds-" + Guid.NewGuid().ToString("N")[..8])],
            new InvocationConfiguration { Output = o, Error = e });
        Assert.Equal(1, exit);
        Assert.Contains(says, e.ToString());
    }
}
