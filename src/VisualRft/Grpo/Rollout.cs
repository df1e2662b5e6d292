using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

// The records a notebook cell holds at each stage of a GRPO step (DESIGN.md "The experience"). They are plain data:
// no tensors, nothing to dispose, valid after the trainer, policy and dataset that made them are gone. The tensors the
// update needs stay inside the trainer, keyed by RolloutGroup.Id.

/// <summary>
/// One completion token by token over the rollout's completion width C: what the loss sees. Positions after the first end
/// token are padding (<see cref="Mask"/> false, log-probs 0).
/// </summary>
/// <param name="Ids">Token ids [C].</param>
/// <param name="Texts">Each token decoded on its own (a byte-level token that splits a character shows as U+FFFD).</param>
/// <param name="Mask">True through the first end token (visual-rft-spec §2.1): the tokens the loss averages over.</param>
/// <param name="LogProbs">log π(token) of the sampling policy, log_softmax(logits / T) (TRL), read while sampling.</param>
/// <param name="RefLogProbs">The frozen reference's log-probs (β ≠ 0), else null.</param>
/// <param name="Kl">k3 KL per token, exp(ref − logp) − (ref − logp) − 1 (<see cref="GrpoLoss.KlK3"/>), else null.</param>
public sealed record TokenTrace(int[] Ids, string[] Texts, bool[] Mask, float[] LogProbs, float[]? RefLogProbs, float[]? Kl)
{
    public int Width => Ids.Length;
}

/// <summary>One sampled completion (row Prompt·G + Index of the rollout).</summary>
/// <param name="Prompt">Which prompt of the rollout it answers.</param>
/// <param name="Index">Its place among the prompt's G completions.</param>
/// <param name="Text">Decoded without special tokens, as the official trainer hands it to the rewards (spec §2.1).</param>
/// <param name="Tokens">Tokens through the end token (the loss mask's length).</param>
/// <param name="Finished">False when the completion hit the length limit before an end token.</param>
/// <param name="Trace">The tokens as the loss sees them.</param>
public sealed record Completion(int Prompt, int Index, string Text, int Tokens, bool Finished, TokenTrace Trace)
{
    /// <summary>The <c>&lt;think&gt;</c> block as written, or null (see <see cref="Answers.Blocks"/>).</summary>
    public string? Think => Answers.Blocks(Text).Think;

    /// <summary>The <c>&lt;answer&gt;</c> block as written, or null.</summary>
    public string? Answer => Answers.Blocks(Text).Answer;
}

/// <summary>
/// The result of <c>GrpoTrainer.Rollout</c>: G completions for each of B prompts (row b·G + j), with the prompts' samples
/// (image and ground truth), the coordinate frame the model answers in, and each prompt's image frames (original and
/// resized sizes) so that a box can be drawn over the image whatever its frame.
/// </summary>
/// <param name="Id">Unique in the process: the trainer finds the rollout's tensors by it.</param>
/// <param name="Samples">The B prompts' samples: image, problem, solution, ground truth.</param>
/// <param name="G">Completions per prompt.</param>
/// <param name="Completions">B·G completions, prompt by prompt.</param>
/// <param name="AnswerFrame">Qwen2-VL answers in the 0–1000 frame, Qwen2.5-VL in resized-image pixels.</param>
/// <param name="Frames">Per prompt: original and processor-resized image sizes.</param>
/// <param name="Reward">The trainer's reward, which <see cref="Score()"/> applies.</param>
/// <param name="Options">The trainer's options (advantage scaling, G).</param>
/// <param name="GenerateMs">Wall time of encoding and sampling.</param>
/// <param name="ReferenceMs">Wall time of the reference (and old-policy) log-probs.</param>
public sealed record RolloutGroup(
    long Id,
    IReadOnlyList<VisualSample> Samples,
    int G,
    IReadOnlyList<Completion> Completions,
    CoordinateFrame AnswerFrame,
    IReadOnlyList<ImageFrames> Frames,
    TaskReward Reward,
    GrpoOptions Options,
    double GenerateMs,
    double ReferenceMs)
{
    static long _nextId;

    /// <summary>A process-wide unique id for a new rollout.</summary>
    internal static long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>
    /// A group of hand-written completions for one sample, to score and draw without a model: how a reward treats an
    /// answer, a hack, or a frame mix-up. No token traces (a trainer's rollouts have them).
    /// </summary>
    public static RolloutGroup FromTexts(VisualSample sample, IReadOnlyList<string> completions, TaskReward reward,
        CoordinateFrame answerFrame = CoordinateFrame.Normalized1000)
    {
        if (completions.Count < 2) throw new ArgumentException("a group needs at least two completions (its advantages divide by their std)", nameof(completions));
        TokenTrace none = new([], [], [], [], null, null);
        var size = new ImageSize(sample.Width, sample.Height);
        return new RolloutGroup(NextId(), [sample], completions.Count, [.. completions.Select((t, j) => new Completion(0, j, t, 0, true, none))],
            answerFrame, [new ImageFrames(size, size)], reward, GrpoOptions.VisualRftPaper with { NumGenerations = completions.Count }, 0, 0);
    }

    /// <summary>Generated tokens (through the end token) of all completions.</summary>
    public long GeneratedTokens => Completions.Sum(c => (long)c.Tokens);

    /// <summary>The completions of prompt <paramref name="b"/>.</summary>
    public IEnumerable<Completion> Of(int b) => Completions.Where(c => c.Prompt == b);

    /// <summary>Scores every completion with the trainer's reward against its prompt's solution.</summary>
    public ScoredGroup Score() => Score(Reward);

    /// <summary>Scores with another reward (e.g. the strict preset, to compare).</summary>
    public ScoredGroup Score(TaskReward reward)
    {
        var breakdowns = new RewardBreakdown[Completions.Count];
        for (int b = 0; b < Samples.Count; b++)
        {
            var scored = reward.Score([.. Of(b).Select(c => c.Text)], Samples[b].Solution);
            for (int j = 0; j < G; j++) breakdowns[b * G + j] = scored[j];
        }
        return new ScoredGroup(this, breakdowns, reward);
    }
}

/// <summary>A rollout with every completion's reward components (rows as in <see cref="RolloutGroup"/>).</summary>
public sealed record ScoredGroup(RolloutGroup Rollout, IReadOnlyList<RewardBreakdown> Rewards, TaskReward Reward)
{
    /// <summary>Total reward per completion.</summary>
    public double[] Totals => [.. Rewards.Select(r => r.Total)];

    /// <summary>Each component's values over the completions, by name.</summary>
    public IReadOnlyDictionary<string, double[]> Components =>
        Reward.Components.ToDictionary(c => c.Name, c => Rewards.Select(r => r[c.Name]).ToArray());

    /// <summary>Group-normalised advantages with the trainer's reward scaling.</summary>
    public AdvantageBatch Advantages() => Advantages(Rollout.Options.RewardScaling);

    /// <summary>
    /// Advantages as <see cref="GrpoLoss.Advantages"/> computes them. A non-finite total (the official detection reward
    /// turns <c>'Confidence': NaN</c> into NaN, spec §4.7) makes its whole group's advantages NaN, as in the official
    /// trainer; the update then sees a NaN loss and skips the step, saying why.
    /// </summary>
    public AdvantageBatch Advantages(RewardScaling scaling)
    {
        var totals = Totals;
        var g = Rollout.G;
        var poisoned = Enumerable.Range(0, totals.Length / g).Where(b => totals.Skip(b * g).Take(g).Any(t => !double.IsFinite(t))).ToArray();
        TorchRuntime.EnsureLoaded();
        using var finalizers = TorchRuntime.HoldFinalizers();
        using var scope = NewDisposeScope();
        using var values = GrpoLoss.Advantages(tensor(totals.Select(t => double.IsFinite(t) ? t : 0.0).ToArray(), ScalarType.Float32), g, scaling);
        var advantages = values.Advantages.data<float>().ToArray();
        foreach (var b in poisoned) Array.Fill(advantages, float.NaN, b * g, g);
        var reason = poisoned.Length == 0 ? null
            : $"non-finite reward in the group of prompt {poisoned[0]} ({Rollout.Samples[poisoned[0]].Id})";
        return new AdvantageBatch(this, advantages, [.. values.GroupMean.data<float>().ToArray().Select(v => (double)v)],
            [.. values.GroupStd.data<float>().ToArray().Select(v => (double)v)], values.ZeroStdGroups, scaling, reason);
    }
}

/// <summary>Scored rollouts with their advantages: what <c>GrpoTrainer.Update</c> consumes.</summary>
/// <param name="Scored">The rollout and its rewards.</param>
/// <param name="Advantages">One per completion, constant over its tokens.</param>
/// <param name="GroupMeans">Per prompt: the mean reward of its group.</param>
/// <param name="GroupStds">Per prompt: the unbiased std of its group's rewards.</param>
/// <param name="ZeroStdGroups">Groups whose rewards are all equal: advantage 0, only the KL term trains them (spec §8).</param>
/// <param name="Scaling">What divided the centred rewards.</param>
/// <param name="NonFiniteReason">Set when a group had a non-finite reward (its advantages are NaN).</param>
public sealed record AdvantageBatch(ScoredGroup Scored, float[] Advantages, double[] GroupMeans, double[] GroupStds,
    bool[] ZeroStdGroups, RewardScaling Scaling, string? NonFiniteReason = null)
{
    public RolloutGroup Rollout => Scored.Rollout;

    /// <summary>TRL's <c>frac_reward_zero_std</c>.</summary>
    public double FractionZeroStd => ZeroStdGroups.Length == 0 ? 0 : ZeroStdGroups.Count(z => z) / (double)ZeroStdGroups.Length;
}

/// <summary>What one <c>GrpoTrainer.Update</c> did to the policy. With μ &gt; 1 the loss, KL and clip figures are means over
/// the μ iterations and the times their sums.</summary>
/// <param name="Loss">The loss summed over the micro-batches (each already divided by the accumulation).</param>
/// <param name="Kl">Masked token mean of the k3 KL; null without a reference.</param>
/// <param name="ClipFraction">Share of tokens in the clipped region (TRL <c>clip_ratio/region_mean</c>).</param>
/// <param name="GradNorm">Global gradient norm before clipping (of the last iteration); NaN/inf when that caused a skip.</param>
/// <param name="LearningRate">The rate the (last) optimizer step used.</param>
/// <param name="Skipped">True when the weights were left untouched (non-finite loss or gradient).</param>
/// <param name="SkipReason">Why.</param>
/// <param name="PolicyMs">Wall time of the policy passes and backward.</param>
/// <param name="OptimizerMs">Wall time of clipping and AdamW.</param>
/// <param name="OptimizerStep">Optimizer steps done after this update.</param>
/// <param name="LogProbs">Per completion, per token: the policy's log-probs as the (first) loss computed them, before this
/// update changed the weights.</param>
/// <param name="TokenKl">Per completion, per token: the k3 KL the loss used; null without a reference.</param>
public sealed record UpdateResult(double Loss, double? Kl, double ClipFraction, double GradNorm, double LearningRate,
    bool Skipped, string? SkipReason, double PolicyMs, double OptimizerMs, int OptimizerStep,
    IReadOnlyList<float[]> LogProbs, IReadOnlyList<float[]>? TokenKl);
