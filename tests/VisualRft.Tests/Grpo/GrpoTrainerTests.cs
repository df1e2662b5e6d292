using TorchSharp;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Grpo;
using VisualRft.Imaging;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.Text;
using VisualRft.TinyModel;
using VisualRft.Torch;
using VisualRft.Training;
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

    private protected override (double[] Values, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) Evaluate(string completion, string solution)
    {
        var value = completion.Length == 0 ? 0 : completion.Count(char.IsLetter) / (double)completion.Length;
        if (poison && _calls++ == 1) value = double.NaN;
        return ([value], new ClassificationAnswer(completion, completion, null), null, []);
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

    public VisionLanguagePolicy NewPolicy(ulong seed = 3) =>
        new(Qwen2VLForConditionalGeneration.Create(NewConfig(), seed, CPU), NewProcessor());

    public Qwen2VLConfig NewConfig() =>
        TinyQwen2Vl.Config(Tokenizer, new TinyPretrainOptions { Hidden = 32, Layers = 1, VisionWidth = 16, VisionDepth = 1 });

    public Qwen2VLProcessor NewProcessor() => new(Tokenizer, new Qwen2VLImageProcessor());

    public static GrpoOptions Options => GrpoOptions.VisualRftPaper with
    {
        NumGenerations = 4, MaxCompletionLength = 8, LearningRate = 1e-2, GradientAccumulation = 1, PromptsPerMicroBatch = 2,
    };

}

[Collection(nameof(BitForBit))]
public class GrpoTrainerTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    [Fact]
    public void A_bf16_policy_takes_GRPO_steps_on_float32_master_weights()
    {
        using var policy = new VisionLanguagePolicy(Qwen2VLForConditionalGeneration.Create(fx.NewConfig(), 3, CPU, ScalarType.BFloat16), fx.NewProcessor());
        var before = policy.Model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2);
        Assert.True(trainer.Optimizer.HasMasterWeights);
        var step = trainer.Step().Metrics;
        Assert.False(step.Skipped, step.SkipReason);
        Assert.True(double.IsFinite(step.Loss) && step.GradNorm > 0);
        Assert.All(policy.Model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Contains(policy.Model.state_dict(), kv => !kv.Value.eq(before[kv.Key]).all().item<bool>());
    }

    [Fact]
    public void A_frozen_vision_tower_stays_as_loaded_while_the_decoder_trains()
    {
        using var policy = fx.NewPolicy();
        var before = policy.Model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options with { FreezeVisionTower = true }, totalSteps: 2))
        {
            Assert.DoesNotContain(trainer.Optimizer.Parameters, p => policy.Model.visual.parameters().Any(v => ReferenceEquals(v, p)));
            trainer.Step();
        }
        bool Same(string name) => before[name].eq(policy.Model.state_dict()[name]).all().item<bool>();
        Assert.All(before.Keys.Where(k => k.StartsWith("visual.", StringComparison.Ordinal)), k => Assert.True(Same(k), k));
        Assert.Contains(before.Keys.Where(k => k.StartsWith("model.layers.", StringComparison.Ordinal)), k => !Same(k));
        Assert.False(GrpoOptions.VisualRftPaper.FreezeVisionTower);   // the official code trains the tower
    }

    static Dictionary<string, Tensor> Snapshot(VisionLanguagePolicy p) =>
        p.Model.named_parameters().ToDictionary(x => x.name, x => x.parameter.detach().clone());

    static bool Same(Dictionary<string, Tensor> a, VisionLanguagePolicy p) =>
        p.Model.named_parameters().All(x => x.parameter.eq(a[x.name]).all().item<bool>());

    [Fact]
    public void Staged_api_returns_records_that_fit_together()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 4);
        var group = trainer.Rollout(fx.Data.Train.Take(2).ToList());
        Assert.Equal(8, group.Completions.Count);
        Assert.Equal(CoordinateFrame.Normalized1000, group.AnswerFrame);
        Assert.Equal(2, group.Frames.Count);
        var width = group.Completions[0].Trace.Width;
        Assert.InRange(width, 1, 8);
        foreach (var c in group.Completions)
        {
            var t = c.Trace;
            Assert.Equal(width, t.Ids.Length);
            Assert.Equal(width, t.Texts.Length);
            Assert.Equal(c.Tokens, t.Mask.Count(m => m));               // the mask covers the completion through its end token
            Assert.All(t.LogProbs, lp => Assert.True(lp <= 0));
            Assert.NotNull(t.RefLogProbs);                             // β = 0.04 keeps a reference
            for (int j = 0; j < width; j++)
            {
                Assert.True(t.Kl![j] >= 0);
                if (!t.Mask[j]) Assert.Equal(0f, t.Kl[j]);
            }
            Assert.Equal(c.Text, policy.Processor.Tokenizer.Decode(t.Ids.Take(c.Tokens), skipSpecialTokens: true));
        }
        var scored = group.Score();
        Assert.Equal(8, scored.Totals.Length);
        Assert.Equal(["letters"], scored.Components.Keys);
        var batch = scored.Advantages();
        for (int b = 0; b < 2; b++)                                    // each group's advantages sum to zero
            Assert.Equal(0, batch.Advantages.Skip(4 * b).Take(4).Sum(), 3);
        var update = trainer.Update(batch);
        Assert.False(update.Skipped);
        Assert.Equal(1, update.OptimizerStep);
        Assert.True(update.GradNorm > 0 && double.IsFinite(update.GradNorm));
        Assert.NotNull(update.Kl);
        Assert.Equal(8, update.LogProbs.Count);
        // before the update the policy is the sampling policy: the loss's log-probs are the sampler's
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < group.Completions[i].Tokens; j++)
                Assert.Equal(group.Completions[i].Trace.LogProbs[j], update.LogProbs[i][j], 3);
    }

    [Fact]
    public void Records_stay_valid_after_the_trainer_policy_and_dataset_are_gone()
    {
        RolloutGroup group;
        AdvantageBatch batch;
        Episode episode;
        var data = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1, seed: 5);
        var trainer = new GrpoTrainer(fx.NewPolicy(), data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 4);
        try
        {
            group = trainer.Rollout(data.Train[0]);
            batch = group.Score().Advantages();
            trainer.Update(batch);
            episode = trainer.Step();
        }
        finally
        {
            trainer.Policy.Dispose();
            trainer.Dispose();
        }
        data = null!;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(112 * 112 * 3, group.Samples[0].Image.Pixels.Length);
        Assert.All(group.Completions, c => Assert.Equal(c.Trace.Width, c.Trace.LogProbs.Length));
        Assert.Equal(4, batch.Advantages.Length);
        Assert.Equal(episode.Metrics.Step, episode.Rows.First().Step);
        Assert.Equal(8, episode.Rows.Count());
        var e = Assert.Throws<ObjectDisposedException>(() => trainer.Update(batch));
        Assert.Contains("create a new GrpoTrainer", e.Message);
    }

    [Fact]
    public void A_second_update_on_the_same_batch_steps_again_and_a_released_rollout_says_what_to_do()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 8);
        var batch = trainer.Rollout(fx.Data.Train[0]).Score().Advantages();
        var first = trainer.Update(batch);
        var after = Snapshot(policy);
        var second = trainer.Update(batch);                         // the image graph is spent: the features are recomputed
        Assert.False(second.Skipped, second.SkipReason);
        Assert.Equal(first.OptimizerStep + 1, second.OptimizerStep);
        Assert.False(Same(after, policy));
        // The KL the second update reports is the one its loss used: k3 of its log-probs to the rollout's reference.
        for (int i = 0; i < batch.Rollout.Completions.Count; i++)
        {
            var trace = batch.Rollout.Completions[i].Trace;
            Assert.Equal(GrpoLoss.KlK3(second.LogProbs[i], trace.RefLogProbs!, trace.Mask), second.TokenKl![i], new FloatTolerance(1e-5f));
        }
        Assert.Contains(second.TokenKl!.SelectMany(k => k), k => k > 0);
        Assert.True(batch.Rollout.Handle.HoldsTensors);
        for (int i = 0; i < GrpoTrainer.HeldRollouts; i++) trainer.Rollout(fx.Data.Train[1]);
        Assert.False(batch.Rollout.Handle.HoldsTensors);
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Update(batch));
        Assert.Contains("run trainer.Rollout(...) again", e.Message);
        using var other = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 8);
        Assert.Contains("was not made by this trainer", Assert.Throws<InvalidOperationException>(() => other.Update(trainer.Rollout(fx.Data.Train[0]).Score().Advantages())).Message);
    }

    sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float value) => 0;
    }

    [Theory]
    [InlineData(1.0, 1)]
    [InlineData(0.7, 2)]
    public void The_trainers_loss_and_gradients_are_GrpoLoss_on_the_same_tensors(double temperature, int mu)
    {
        using var policy = fx.NewPolicy();
        var options = TinyTrainerFixture.Options with { Temperature = temperature, Mu = mu };
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), options, totalSteps: 4);
        var batch = trainer.Rollout(fx.Data.Train.Take(2).ToList()).Score().Advantages();
        var t = batch.Rollout.Handle.Tensors!;
        using var scope = NewDisposeScope();

        // The trainer's own pass (what Update backpropagates), gradients kept.
        policy.Model.zero_grad();
        var (own, _) = GrpoTrainer.PolicyLoss(policy.Model, t, tensor(batch.Advantages), options, 1, null);
        own.Loss.backward();
        var ownGrads = policy.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        // The same tensors through the model and GrpoLoss directly, written out here.
        policy.Model.zero_grad();
        var reference = GrpoLoss.Backward(() =>
        {
            var g = batch.Rollout.G;
            var embeds = cat(t.Prompts.Images.Select(i => policy.Model.EncodeImages(i.Pixels, i.GridThw)).ToList(), 0);
            var images = policy.Model.RepeatForSamples(new ImageInputs(embeds, cat(t.Prompts.Images.Select(i => i.GridThw).ToList(), 0)), t.Prompts.Ids, g);
            return policy.Model.CompletionLogProbs(t.Prompts.Ids.repeat_interleave(g, 0), t.Prompts.Mask.repeat_interleave(g, 0),
                t.CompletionIds, t.CompletionMask, images, temperature);
        }, t.OldLogps, t.RefLogps, tensor(batch.Advantages), t.CompletionMask, options);
        Assert.Equal(reference.LossValue, own.LossValue, 6);
        Assert.Equal(reference.MeanKl!.Value, own.MeanKl!.Value, 6);
        foreach (var (name, p) in policy.Model.named_parameters())
        {
            var err = (p.grad! - ownGrads[name]).abs().max().item<float>();
            Assert.True(err <= 1e-6 + 1e-5 * ownGrads[name].abs().max().item<float>(), $"{name}: gradients differ by {err}");
        }
    }

    [Fact]
    public void Every_trainable_parameter_changes_after_one_step()
    {
        using var policy = fx.NewPolicy();
        var before = Snapshot(policy);
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 4);
        var metrics = trainer.Step().Metrics;
        Assert.False(metrics.Skipped, metrics.SkipReason);
        Assert.True(metrics.Time.GenerateMs > 0 && metrics.TokensPerSecond > 0);
        Assert.Equal(1, metrics.Step);
        Assert.Equal(1, metrics.OptimizerStep);
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
        var metrics = trainer.Step().Metrics;
        Assert.True(metrics.Skipped);
        Assert.Contains("non-finite reward", metrics.SkipReason);
        Assert.Contains("loss is NaN", metrics.SkipReason);
        Assert.True(Same(before, policy));
        Assert.Equal(1, trainer.StepsDone);                            // the schedule and the data move on
        Assert.False(trainer.Step().Metrics.Skipped);                  // and the next step trains again
    }

    [Fact]
    public void Several_policy_iterations_use_old_log_probs_and_clip()
    {
        using var policy = fx.NewPolicy();
        var options = TinyTrainerFixture.Options with { Mu = 2, EpsilonHigh = 0.28 };
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), options, totalSteps: 2);
        var batch = trainer.Rollout(fx.Data.Train[0]).Score().Advantages();
        Assert.NotNull(batch.Rollout.Handle.Tensors!.OldLogps);
        var update = trainer.Update(batch);
        Assert.Equal(2, update.OptimizerStep);
        Assert.InRange(update.ClipFraction, 0, 1);
        var step = trainer.Step().Metrics;
        Assert.Equal(2, step.Step);                                    // trainer steps, not optimizer steps
        Assert.Equal(4, step.OptimizerStep);
    }

    [Fact]
    public void Prompts_over_the_length_limit_are_refused_by_name()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options with { MaxPromptLength = 10 }, totalSteps: 2);
        var e = Assert.Throws<ArgumentException>(() => trainer.Rollout(fx.Data.Train[0]));
        Assert.Contains(fx.Data.Train[0].Id, e.Message);
        Assert.Contains("MaxPromptLength = 10", e.Message);
    }

    [Fact]
    public void Training_writes_one_json_line_per_step_that_follows_each_prompt()
    {
        var run = Path.Combine(Path.GetTempPath(), $"vrft-episodes-{Guid.NewGuid():N}");
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3);
        var episodes = trainer.Train(2, run).ToList();
        Assert.Equal([1, 2], episodes.Select(e => e.Step));
        Assert.Equal(episodes, trainer.History);
        var rows = EpisodeLog.Read(Path.Combine(run, EpisodeLog.FileName));
        Assert.Equal(episodes.SelectMany(e => e.Rows).Select(r => (r.Step, r.SampleId, r.Text, r.Advantage)),
            rows.Select(r => (r.Step, r.SampleId, r.Text, r.Advantage)));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, EpisodeLog.FileName)).Length);
        Directory.Delete(run, recursive: true);
    }

    [Fact]
    public void A_resumed_run_equals_the_uninterrupted_run()
    {
        using var oneThread = BitForBit.OneThread();
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
            trainer.SaveCheckpoint(run, new CheckpointRetention(KeepLast: 1, KeepBest: false));
            trainer.Step();
            trainer.SaveCheckpoint(run, new CheckpointRetention(KeepLast: 1, KeepBest: false));
            Assert.Single(Directory.GetDirectories(run, "checkpoint-*"));   // the step-0 checkpoint was pruned
        }
        using (var policy = fx.NewPolicy())                // the base model again: it is the reference
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3))
        {
            trainer.LoadCheckpoint(run);
            Assert.Equal(1, trainer.StepsDone);
            Assert.Equal(2, trainer.Train().Count());
            Assert.True(Same(straight, policy), "the weights differ after resume");
        }
        Directory.Delete(run, recursive: true);
    }
}
