using TorchSharp;
using VisualRft.Data;
using VisualRft.Grpo;
using VisualRft.Imaging;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.Text;
using VisualRft.TinyModel;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Grpo;

/// <summary>
/// A reward with spread on random text, so that a freshly initialised model gets non-zero advantages: the share of
/// letters in the completion. With <c>poison</c>, the second completion scored gets NaN, like the official detection
/// reward on <c>'Confidence': NaN</c>.
/// </summary>
sealed class LetterShareReward(bool poison = false) : TaskReward(VisualTask.Classification, RewardPreset.Strict,
    [new RewardComponent("letters", "share of letters in the completion", 0, 1)])
{
    int _calls;

    private protected override (double[] Values, ParsedAnswer Answer, ParseFailure? Failure) Evaluate(string completion, string solution)
    {
        var value = completion.Length == 0 ? 0 : completion.Count(char.IsLetter) / (double)completion.Length;
        if (poison && _calls++ == 1) value = double.NaN;
        return ([value], new ClassificationAnswer(completion, completion, null), null);
    }
}

/// <summary>A tiny random policy on the synthetic detection task: every trainer path in seconds (TRL's tiny-model tests).</summary>
public sealed class TinyTrainerFixture
{
    public TinyTrainerFixture()
    {
        TorchRuntime.EnsureLoaded();
        Data = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1);
        Tokenizer = BpeTrainer.Train(Data.Train.Select(s => s.Problem + s.Solution), 300);
    }

    public SyntheticDataset Data { get; }
    public Qwen2Tokenizer Tokenizer { get; }

    public VisionLanguagePolicy NewPolicy(ulong seed = 3)
    {
        var config = TinyQwen2Vl.Config(Tokenizer, new TinyPretrainOptions { Hidden = 32, Layers = 1, VisionWidth = 16, VisionDepth = 1 });
        return new VisionLanguagePolicy(Qwen2VLForConditionalGeneration.Create(config, seed, CPU), new Qwen2VLProcessor(Tokenizer, new Qwen2VLImageProcessor()));
    }

    public static GrpoOptions Options => GrpoOptions.VisualRftPaper with
    {
        NumGenerations = 4, MaxCompletionLength = 8, LearningRate = 1e-2, GradientAccumulation = 1, PromptsPerMicroBatch = 2,
    };

}

public class GrpoTrainerTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    static Dictionary<string, Tensor> Snapshot(VisionLanguagePolicy p) =>
        p.Model.named_parameters().ToDictionary(x => x.name, x => x.parameter.detach().clone());

    [Fact]
    public void Staged_api_returns_records_that_fit_together()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 4);
        using var group = trainer.Rollout(fx.Data.Train.Take(2).ToList());
        Assert.Equal(8, group.Completions.Count);
        Assert.Equal(new long[] { 8, group.CompletionIds.shape[1] }, group.CompletionMask.shape);
        Assert.True(group.CompletionIds.shape[1] <= 8);
        Assert.NotNull(group.RefLogps);                    // β = 0.04 keeps a reference
        Assert.Null(group.OldLogps);                       // μ = 1: old = current, detached
        var scored = group.Score();
        Assert.Equal(8, scored.Totals.Length);
        Assert.Equal(["letters"], scored.Components.Keys);
        using var batch = scored.Advantages();
        var adv = batch.ToArray();
        for (int b = 0; b < 2; b++)                        // each group's advantages sum to zero
            Assert.Equal(0, adv.Skip(4 * b).Take(4).Sum(), 3);
        var update = trainer.Update(batch);
        Assert.False(update.Skipped);
        Assert.Equal(1, update.OptimizerStep);
        Assert.True(update.GradNorm > 0 && double.IsFinite(update.GradNorm));
        Assert.NotNull(update.Kl);
    }

    [Fact]
    public void Every_trainable_parameter_changes_after_one_step()
    {
        using var policy = fx.NewPolicy();
        var before = Snapshot(policy);
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 4);
        var metrics = trainer.Step();
        Assert.False(metrics.Skipped, metrics.SkipReason);
        Assert.True(metrics.Time.GenerateMs > 0 && metrics.TokensPerSecond > 0);
        var unchanged = policy.Model.named_parameters().Where(p => p.parameter.requires_grad)
            .Where(p => p.parameter.eq(before[p.name]).all().item<bool>()).Select(p => p.name).ToList();
        Assert.Empty(unchanged);
        // the reference stays as it was
        foreach (var (name, p) in trainer.Reference!.Model.named_parameters())
            Assert.True(p.eq(before[name]).all().item<bool>(), name);
    }

    [Fact]
    public void A_non_finite_reward_skips_the_step_and_changes_nothing()
    {
        using var policy = fx.NewPolicy();
        var before = Snapshot(policy);
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(poison: true), TinyTrainerFixture.Options, totalSteps: 4);
        var metrics = trainer.Step();
        Assert.True(metrics.Skipped);
        Assert.Contains("non-finite reward", metrics.SkipReason);
        Assert.Contains("loss is NaN", metrics.SkipReason);
        foreach (var (name, p) in policy.Model.named_parameters())
            Assert.True(p.eq(before[name]).all().item<bool>(), $"{name} changed");
        Assert.Equal(1, trainer.StepsDone);                // the schedule and the data move on
        Assert.False(trainer.Step().Skipped);              // and the next step trains again
    }

    [Fact]
    public void Several_policy_iterations_use_old_log_probs_and_clip()
    {
        using var policy = fx.NewPolicy();
        var options = TinyTrainerFixture.Options with { Mu = 2, EpsilonHigh = 0.28 };
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), options, totalSteps: 2);
        using var group = trainer.Rollout(fx.Data.Train[0]);
        Assert.NotNull(group.OldLogps);
        using var batch = group.Score().Advantages();
        var update = trainer.Update(batch);
        Assert.Equal(2, update.OptimizerStep);
        Assert.InRange(update.ClipFraction, 0, 1);
    }

    [Fact]
    public void A_resumed_run_equals_the_uninterrupted_run()
    {
        var run = Path.Combine(Path.GetTempPath(), $"vrft-resume-{Guid.NewGuid():N}");
        Dictionary<string, Tensor> straight;
        using (var policy = fx.NewPolicy())
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3))
        {
            foreach (var _ in trainer.Train()) { }
            straight = Snapshot(policy);
        }
        using (var policy = fx.NewPolicy())
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3))
        {
            trainer.Step();
            trainer.SaveCheckpoint(run);
        }
        using (var policy = fx.NewPolicy())                // the base model again: it is the reference
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3))
        {
            trainer.LoadCheckpoint(run);
            Assert.Equal(1, trainer.StepsDone);
            Assert.Equal(2, trainer.Train().Count());
            foreach (var (name, p) in policy.Model.named_parameters())
                Assert.True(p.eq(straight[name]).all().item<bool>(), $"{name} differs after resume");
        }
        Directory.Delete(run, recursive: true);
    }
}
