using VisualRft.Data;
using VisualRft.Models.Qwen2VL;
using VisualRft.Rewards;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>One prompt's image: pixels and grid as processed, and the policy's embeddings of it.</summary>
internal sealed record PromptImage(Tensor Pixels, Tensor GridThw, Tensor Embeds)
{
    public ImageInputs Inputs => new(Embeds, GridThw);
}

/// <summary>One sampled completion: its text, token count (through the end token) and whether it ended.</summary>
public sealed record Completion(int Prompt, int Index, string Text, int Tokens, bool Finished);

/// <summary>
/// The result of <c>GrpoTrainer.Rollout</c>: G completions for each of B prompts (rows b·G + j), with what the
/// update needs — token ids, the completion mask (through the first end token, spec §2.1), reference log-probs (β ≠ 0)
/// and old log-probs (μ &gt; 1) — and the per-prompt image features of the policy, computed once and reused by the
/// sampler and the first policy pass (their autograd graph is kept for it).
/// </summary>
public sealed class RolloutGroup : IDisposable
{
    internal RolloutGroup(GrpoTrainer trainer, IReadOnlyList<VisualSample> samples, int g, Tensor promptIds, Tensor promptMask,
        IReadOnlyList<PromptImage> policyImages, Tensor completionIds, Tensor completionMask, Tensor? refLogps, Tensor? oldLogps,
        IReadOnlyList<Completion> completions, double generateMs, double referenceMs)
    {
        Trainer = trainer; Samples = samples; G = g; PromptIds = promptIds; PromptMask = promptMask; PolicyImages = policyImages;
        CompletionIds = completionIds; CompletionMask = completionMask; RefLogps = refLogps; OldLogps = oldLogps;
        Completions = completions; GenerateMs = generateMs; ReferenceMs = referenceMs;
    }

    internal GrpoTrainer Trainer { get; }
    public IReadOnlyList<VisualSample> Samples { get; }
    public int G { get; }
    /// <summary>[B, P] left-padded prompts.</summary>
    public Tensor PromptIds { get; }
    public Tensor PromptMask { get; }
    /// <summary>Per prompt: the policy's image embeddings and grid.</summary>
    internal IReadOnlyList<PromptImage> PolicyImages { get; }
    /// <summary>[B·G, C] sampled ids (pad after the end token).</summary>
    public Tensor CompletionIds { get; }
    /// <summary>[B·G, C] 1 through the first end token.</summary>
    public Tensor CompletionMask { get; }
    public Tensor? RefLogps { get; }
    public Tensor? OldLogps { get; }
    public IReadOnlyList<Completion> Completions { get; }
    public double GenerateMs { get; }
    public double ReferenceMs { get; }

    /// <summary>Generated tokens (through the end token) of all completions.</summary>
    public long GeneratedTokens => Completions.Sum(c => (long)c.Tokens);

    /// <summary>Scores every completion with the trainer's reward against its prompt's solution.</summary>
    public ScoredGroup Score() => Score(Trainer.Reward);

    public ScoredGroup Score(TaskReward reward)
    {
        var breakdowns = new RewardBreakdown[Completions.Count];
        for (int b = 0; b < Samples.Count; b++)
        {
            var texts = Enumerable.Range(0, G).Select(j => Completions[b * G + j].Text).ToList();
            var scored = reward.Score(texts, Samples[b].Solution);
            for (int j = 0; j < G; j++) breakdowns[b * G + j] = scored[j];
        }
        return new ScoredGroup(this, breakdowns);
    }

    public void Dispose()
    {
        PromptIds.Dispose(); PromptMask.Dispose(); CompletionIds.Dispose(); CompletionMask.Dispose();
        RefLogps?.Dispose(); OldLogps?.Dispose();
        foreach (var i in PolicyImages) { i.Pixels.Dispose(); i.Embeds.Dispose(); i.GridThw.Dispose(); }
    }
}

/// <summary>A rollout with every completion's reward components (rows as in <see cref="RolloutGroup"/>).</summary>
public sealed record ScoredGroup(RolloutGroup Rollout, IReadOnlyList<RewardBreakdown> Rewards)
{
    /// <summary>Total reward per completion.</summary>
    public double[] Totals => [.. Rewards.Select(r => r.Total)];

    /// <summary>Each component's values over the completions, by name.</summary>
    public IReadOnlyDictionary<string, double[]> Components =>
        Rewards.Count == 0 ? new Dictionary<string, double[]>()
        : Rewards[0].Components.Select(c => c.Name).ToDictionary(n => n, n => Rewards.Select(r => r[n]).ToArray());

    /// <summary>Group-normalised advantages with the trainer's reward scaling.</summary>
    public AdvantageBatch Advantages() => Advantages(Rollout.Trainer.Options.RewardScaling);

    /// <summary>
    /// A non-finite total (the official detection reward turns <c>'Confidence': NaN</c> into NaN, spec §4.7) makes its
    /// whole group's advantages NaN, as in the official trainer; the update then sees a NaN loss and skips the step.
    /// </summary>
    public AdvantageBatch Advantages(RewardScaling scaling)
    {
        var totals = Totals;
        var g = Rollout.G;
        var poisoned = Enumerable.Range(0, totals.Length / g).Where(b => totals.Skip(b * g).Take(g).Any(t => !double.IsFinite(t))).ToArray();
        var clean = totals.Select(t => double.IsFinite(t) ? t : 0.0).ToArray();
        using var rewards = tensor(clean, ScalarType.Float32);
        var values = GrpoLoss.Advantages(rewards, g, scaling);
        foreach (var b in poisoned) values.Advantages.narrow(0, b * g, g).fill_(double.NaN);
        var reason = poisoned.Length == 0 ? null
            : $"non-finite reward in the group of prompt {poisoned[0]} ({Rollout.Samples[poisoned[0]].Id})";
        return new AdvantageBatch(this, values, reason);
    }
}

/// <summary>Scored rollouts with their advantages: what <see cref="GrpoTrainer.Update"/> consumes.</summary>
public sealed record AdvantageBatch(ScoredGroup Scored, GroupAdvantages Values, string? NonFiniteReason = null) : IDisposable
{
    public RolloutGroup Rollout => Scored.Rollout;

    /// <summary>Advantages as plain numbers, one per completion.</summary>
    public float[] ToArray() { using var a = Values.Advantages.cpu().to_type(ScalarType.Float32); return a.data<float>().ToArray(); }

    public void Dispose() => Values.Dispose();
}

/// <summary>What one <see cref="GrpoTrainer.Update"/> did to the policy.</summary>
public sealed record UpdateResult(double Loss, double? Kl, double ClipFraction, double GradNorm, double LearningRate,
    bool Skipped, string? SkipReason, double PolicyMs, double OptimizerMs, int OptimizerStep);
