using VisualRft.Rewards;

namespace VisualRft.Grpo;

/// <summary>Mean and unbiased std of one reward component over a step's completions (TRL <c>rewards/&lt;name&gt;/mean|std</c>).</summary>
public sealed record RewardStat(double Mean, double Std)
{
    /// <summary>Std is unbiased (N − 1) like TRL's <c>nanstd</c>; 0 for a single value.</summary>
    public static RewardStat Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values to summarise", nameof(values));
        var mean = values.Average();
        var std = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return new RewardStat(mean, std);
    }

    /// <summary>One stat per named component (e.g. "iou", "confidence", "format"; <see cref="RewardBreakdown.ByComponent"/>).</summary>
    public static IReadOnlyDictionary<string, RewardStat> OfComponents(IReadOnlyDictionary<string, double[]> components) =>
        components.ToDictionary(kv => kv.Key, kv => Of(kv.Value));
}

/// <summary>Wall time of a step's phases in milliseconds (anchors.md §E.2: generation dominates).</summary>
public sealed record StepTimings(double GenerateMs, double ReferenceMs, double PolicyMs, double OptimizerMs)
{
    public double TotalMs => GenerateMs + ReferenceMs + PolicyMs + OptimizerMs;
}

/// <summary>
/// Everything one GRPO trainer step reports (TRL's logged metrics). A skipped step (non-finite loss or gradient) keeps its
/// rollout metrics and says why it was skipped.
/// </summary>
/// <param name="Step">Trainer steps done after this one (1-based); each is μ optimizer steps.</param>
/// <param name="Rewards">Per component mean/std.</param>
/// <param name="Reward">Total reward mean/std.</param>
/// <param name="FractionZeroStdGroups">Groups with all-equal rewards (TRL <c>frac_reward_zero_std</c>).</param>
/// <param name="Kl">Masked token mean of the k3 KL; null without a reference.</param>
/// <param name="Loss">Loss summed over the step's micro-batches (each already divided by the accumulation); the mean over
/// the μ iterations, like <paramref name="Kl"/> and <paramref name="ClipFraction"/>.</param>
/// <param name="ClipFraction">Share of tokens in the clipped region (TRL <c>clip_ratio/region_mean</c>).</param>
/// <param name="GradNorm">Global gradient 2-norm before clipping; NaN/inf when the step was skipped for it.</param>
/// <param name="CompletionLength">Mean completion length in tokens (through the end token).</param>
/// <param name="LearningRate">The learning rate this step used.</param>
/// <param name="Time">Phase split: generate / reference / policy / optimizer.</param>
/// <param name="TokensPerSecond">Generated tokens / generation seconds.</param>
/// <param name="Skipped">True when the optimizer step was not applied (weights untouched).</param>
/// <param name="SkipReason">Why, e.g. "loss is NaN at micro-batch 2" or "non-finite gradient in lm_head.weight".</param>
/// <param name="OptimizerStep">Optimizer steps done after this trainer step (HF's <c>global_step</c>).</param>
public sealed record StepMetrics(
    int Step,
    IReadOnlyDictionary<string, RewardStat> Rewards,
    RewardStat Reward,
    double FractionZeroStdGroups,
    double? Kl,
    double Loss,
    double ClipFraction,
    double GradNorm,
    double CompletionLength,
    double LearningRate,
    StepTimings Time,
    double TokensPerSecond,
    bool Skipped = false,
    string? SkipReason = null,
    int OptimizerStep = 0)
{
    /// <summary>The metrics of trainer step <paramref name="step"/> from its scored micro-batches and its update.</summary>
    public static StepMetrics Of(int step, IReadOnlyList<AdvantageBatch> batches, UpdateResult update)
    {
        var rewards = batches.SelectMany(b => b.Scored.Rewards).ToList();
        var completions = batches.SelectMany(b => b.Rollout.Completions).ToList();
        var generateMs = batches.Sum(b => b.Rollout.GenerateMs);
        return new StepMetrics(step, RewardStat.OfComponents(RewardBreakdown.ByComponent(rewards)), RewardStat.Of(rewards.Select(r => r.Total).ToArray()),
            GroupAdvantages.FractionZeroStd([.. batches.SelectMany(b => b.ZeroStdGroups)]), update.Kl, update.Loss, update.ClipFraction, update.GradNorm,
            completions.Average(c => c.Tokens), update.LearningRate,
            new StepTimings(generateMs, batches.Sum(b => b.Rollout.ReferenceMs), update.PolicyMs, update.OptimizerMs),
            completions.Sum(c => c.Tokens) / Math.Max(generateMs / 1000.0, 1e-9), update.Skipped, update.SkipReason, update.OptimizerStep);
    }
}
