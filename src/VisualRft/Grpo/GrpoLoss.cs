using TorchSharp;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary><see cref="GroupAdvantages.Of"/> on tensors: advantages of one batch of B·G rewards (groups are consecutive
/// runs of G).</summary>
/// <param name="Advantages">[B·G], constant over each completion's tokens.</param>
/// <param name="GroupMean">[B] mean reward of each group.</param>
/// <param name="GroupStd">[B] unbiased std of each group (always the group's, whatever the scaling).</param>
/// <param name="ZeroStdGroups">Groups whose rewards are all equal: their advantages are 0 and only the KL term trains
/// them (visual-rft-spec.md §8, "zero-advantage groups").</param>
public sealed record GroupAdvantageTensors(Tensor Advantages, Tensor GroupMean, Tensor GroupStd, bool[] ZeroStdGroups) : IDisposable
{
    public void Dispose()
    {
        Advantages.Dispose();
        GroupMean.Dispose();
        GroupStd.Dispose();
    }
}

/// <summary>The loss of one micro-batch and its metrics (plain doubles, read once after the forward pass).</summary>
/// <param name="Loss">Scalar with the autograd graph (detached when returned by <see cref="GrpoLoss.Backward"/>).</param>
/// <param name="MeanKl">Masked token mean of the k3 KL; null when there is no reference (β = 0).</param>
/// <param name="TokenKl">The k3 KL per token [N, C], detached, 0 on padding: the values the loss used and
/// <see cref="MeanKl"/> averages; null when there is no reference.</param>
/// <param name="ClipLow">Share of tokens clipped from below with a negative advantage (TRL <c>clip_ratio/low_mean</c>).</param>
/// <param name="ClipHigh">Share of tokens clipped from above with a positive advantage (TRL <c>clip_ratio/high_mean</c>).</param>
/// <param name="ClipRegion">Low or high: the tokens whose gradient the clip removes (TRL <c>clip_ratio/region_mean</c>).</param>
/// <param name="OutOfRangeFraction">Share of tokens whose ratio lies outside [1 − ε_low, 1 + ε_high] whatever the
/// advantage's sign: the golden fixture's <c>clipped_fraction</c>.</param>
/// <param name="Tokens">Active (masked-in) completion tokens.</param>
public sealed record GrpoLossResult(Tensor Loss, double? MeanKl, Tensor? TokenKl, double ClipLow, double ClipHigh, double ClipRegion,
    double OutOfRangeFraction, long Tokens)
{
    public double LossValue => Loss.to_type(ScalarType.Float64).item<double>();
}

/// <summary>
/// The GRPO objective on tensors of per-token log-probabilities, in the style of tiny-grpo's <c>loss.py</c>
/// (anchors.md §D.2). Shapes: N completions (= B·G), C completion tokens.
/// <code>
/// A      = (r − mean_group) / (std + 1e-4)                    advantages, per completion            [N]
/// ratio  = exp(logp − old)                                     old = logp.detach() when μ = 1        [N,C]
/// surr   = min(ratio·A, clamp(ratio, 1 − ε_low, 1 + ε_high)·A)
/// kl     = exp(ref − logp) − (ref − logp) − 1                  k3 (Schulman), per token              [N,C]
/// loss_t = −surr + β·kl                                        then reduced by the loss type
/// </code>
/// These are the formulas of the golden fixture (fixtures/hf-golden/README.md) and of TRL's <c>_compute_loss</c>.
/// </summary>
public static class GrpoLoss
{
    /// <summary>
    /// Both log-ratios (ref − logp for the KL, logp − old for the importance ratio) are clamped to ±20 before exp:
    /// exp(20) ≈ 4.9e8 fits float32/bfloat16 with room for the products that follow, so a token the policy has pushed
    /// far from the reference cannot turn the loss into inf/NaN. The clamp changes nothing for |log-ratio| ≤ 20, which
    /// covers every finite number in the golden fixture (their log-ratios stay below 1); beyond it the term stops
    /// growing and its gradient through the clamp is 0. TRL does not clamp.
    /// </summary>
    public const double LogRatioClamp = 20.0;

    /// <summary>
    /// <see cref="GroupAdvantages.Of"/> on a rewards tensor [B·G] ordered group by group, in its dtype and on its device.
    /// </summary>
    public static GroupAdvantageTensors Advantages(Tensor rewards, int groupSize, RewardScaling scaling = RewardScaling.Group)
    {
        if (rewards.dim() != 1) throw new ArgumentException($"rewards must be 1-D [B·G], got shape [{string.Join(",", rewards.shape)}]", nameof(rewards));
        if (groupSize < 2) throw new ArgumentException($"group size must be >= 2, got {groupSize}", nameof(groupSize));
        var n = rewards.shape[0];
        if (n == 0 || n % groupSize != 0) throw new ArgumentException($"{n} rewards do not split into groups of {groupSize}", nameof(rewards));
        if (!rewards.is_floating_point()) throw new ArgumentException($"rewards must be floating point, got {rewards.dtype}", nameof(rewards));
        using var finalizers = FinalizerGate.Hold();
        if (!rewards.isfinite().all().item<bool>()) throw new ArgumentException("rewards contain NaN or inf; sanitise the reward functions (spec §8: NaN confidence)", nameof(rewards));

        using var scope = NewDisposeScope();
        var grouped = rewards.detach().view(-1, groupSize);
        var mean = grouped.mean([1L]);
        var std = grouped.std(1, unbiased: true);
        var centred = rewards.detach() - mean.repeat_interleave(groupSize);
        var adv = scaling switch
        {
            RewardScaling.Group => centred / (std.repeat_interleave(groupSize) + GroupAdvantages.StdEpsilon),
            RewardScaling.Batch => centred / (rewards.detach().std(unbiased: true) + GroupAdvantages.StdEpsilon),
            RewardScaling.None => centred,
            _ => throw new ArgumentOutOfRangeException(nameof(scaling), scaling, "unknown reward scaling"),
        };
        var zero = std.abs().le(GroupAdvantages.ZeroStd).cpu().data<bool>().ToArray();
        return new GroupAdvantageTensors(adv.MoveToOuterDisposeScope(), mean.MoveToOuterDisposeScope(), std.MoveToOuterDisposeScope(), zero);
    }

    /// <summary>k3 KL estimator per token: exp(ref − logp) − (ref − logp) − 1 ≥ 0, log-ratio clamped (<see cref="LogRatioClamp"/>).</summary>
    public static Tensor KlK3(Tensor logps, Tensor refLogps)
    {
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        var d = (refLogps - logps).clamp(-LogRatioClamp, LogRatioClamp);
        return (d.exp() - d - 1).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="KlK3(Tensor, Tensor)"/> on one completion's plain values, 0 where <paramref name="mask"/> is
    /// false: a token trace's KL (in double, then float).</summary>
    public static float[] KlK3(float[] logps, float[] refLogps, bool[] mask) => [.. logps.Select((logp, t) =>
    {
        if (!mask[t]) return 0f;
        var d = Math.Clamp((double)refLogps[t] - logp, -LogRatioClamp, LogRatioClamp);
        return (float)(Math.Exp(d) - d - 1);
    })];

    /// <summary>
    /// The loss of one micro-batch. <paramref name="oldLogps"/> null means μ = 1 (old = <paramref name="logps"/> detached,
    /// ratio ≡ 1, the Visual-RFT objective); <paramref name="refLogps"/> may be null only when β = 0.
    /// Normalisers (TRL <c>_compute_loss</c>): grpo/bnpo/dr_grpo are divided by <paramref name="accumulationSteps"/> so
    /// that the gradients summed over the micro-batches of a step are their mean. dapo divides the masked sum by the
    /// active tokens of the whole accumulated batch — TRL's <c>num_items_in_batch</c> (all micro-batches of the step,
    /// all processes) / num_processes — which the caller passes as <paramref name="dapoTokenCount"/>; it may be omitted
    /// only when the step has a single micro-batch.
    /// </summary>
    public static GrpoLossResult Compute(Tensor logps, Tensor? oldLogps, Tensor? refLogps, Tensor advantages, Tensor completionMask,
        GrpoOptions options, int accumulationSteps = 1, double? dapoTokenCount = null)
    {
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        var (loss, ratio, kl, mask, a) = Loss(logps, oldLogps, refLogps, advantages, completionMask, options, accumulationSteps, dapoTokenCount);

        // Metrics, detached; one read each (TRL "Logged metrics"). The KL is reported whenever a reference is given.
        using var _ = torch.no_grad();
        var tokens = D(mask.sum());
        var count = Math.Max(1.0, tokens);
        double MaskedMean(Tensor x) => D((x.to_type(logps.dtype) * mask).sum()) / count;
        var below = ratio.lt(1 - options.EpsilonLow);
        var above = ratio.gt(1 + options.EpsilonHigh);
        var low = below.logical_and(a.lt(0));
        var high = above.logical_and(a.gt(0));
        double? meanKl = kl is null ? null : MaskedMean(kl);
        return new GrpoLossResult(loss.MoveToOuterDisposeScope(), meanKl, kl?.detach().MoveToOuterDisposeScope(), MaskedMean(low), MaskedMean(high),
            MaskedMean(low.logical_or(high)), MaskedMean(below.logical_or(above)), (long)tokens);
    }

    /// <summary>The loss of <see cref="Compute"/> and the per-token tensors its metrics read — the ratio, the masked k3 KL
    /// (null without a reference), the mask in the log-probs' dtype and the advantages as a column — all on the
    /// log-probs' device, with no host copy, in the caller's dispose scope.</summary>
    internal static (Tensor Loss, Tensor Ratio, Tensor? Kl, Tensor Mask, Tensor Advantages) Loss(Tensor logps, Tensor? oldLogps, Tensor? refLogps,
        Tensor advantages, Tensor completionMask, GrpoOptions options, int accumulationSteps = 1, double? dapoTokenCount = null)
    {
        CheckShapes(logps, oldLogps, refLogps, advantages, completionMask, options);
        if (accumulationSteps < 1) throw new ArgumentOutOfRangeException(nameof(accumulationSteps), accumulationSteps, "must be >= 1");
        if (options.LossType == LossType.Dapo && dapoTokenCount is null && accumulationSteps != 1)
            throw new ArgumentException("dapo with gradient accumulation needs dapoTokenCount = active tokens of the whole accumulated batch", nameof(dapoTokenCount));
        if (dapoTokenCount is { } dt && !(dt > 0)) throw new ArgumentOutOfRangeException(nameof(dapoTokenCount), dt, "must be > 0");

        var mask = completionMask.to_type(logps.dtype);
        var tokens = mask.sum();
        var old = oldLogps ?? logps.detach();
        var ratio = (logps - old).clamp(-LogRatioClamp, LogRatioClamp).exp();
        var a = advantages.reshape(-1, 1).to_type(logps.dtype);
        var clipped = ratio.clamp(1 - options.EpsilonLow, 1 + options.EpsilonHigh);
        var perToken = -torch.minimum(ratio * a, clipped * a);
        // The KL once, whenever a reference is given: for the loss when β ≠ 0, and for the metrics.
        var kl = refLogps is null ? null : KlK3(logps, refLogps) * mask;
        if (options.Beta != 0) perToken = perToken + options.Beta * kl!;
        var masked = perToken * mask;
        var loss = options.LossType switch
        {
            LossType.Grpo => (masked.sum(1) / mask.sum(1).clamp_min(1)).mean() / accumulationSteps,
            LossType.Bnpo => masked.sum() / tokens.clamp_min(1) / accumulationSteps,
            LossType.DrGrpo => masked.sum() / (logps.shape[0] * (double)options.MaxCompletionLength) / accumulationSteps,
            LossType.Dapo => masked.sum() / (dapoTokenCount is { } n ? n : tokens.clamp_min(1)),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.LossType, "unknown loss type"),
        };
        return (loss, ratio, kl, mask, a);
    }

    static double D(Tensor t) => t.to_type(ScalarType.Float64).item<double>();

    /// <summary>
    /// Computes the policy log-probs with <paramref name="policyLogps"/> (with grad), the loss, and backpropagates it;
    /// returns the metrics with the loss detached. This is where a model plugs in (e.g. the golden gradient check).
    /// </summary>
    public static GrpoLossResult Backward(Func<Tensor> policyLogps, Tensor? oldLogps, Tensor? refLogps, Tensor advantages,
        Tensor completionMask, GrpoOptions options, int accumulationSteps = 1, double? dapoTokenCount = null)
    {
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        var logps = policyLogps();
        if (!logps.requires_grad) throw new ArgumentException("the policy log-probs do not require grad (computed under no_grad?)", nameof(policyLogps));
        var r = Compute(logps, oldLogps, refLogps, advantages, completionMask, options, accumulationSteps, dapoTokenCount);
        r.Loss.backward();
        return r with { Loss = r.Loss.detach().MoveToOuterDisposeScope(), TokenKl = r.TokenKl?.MoveToOuterDisposeScope() };
    }

    static void CheckShapes(Tensor logps, Tensor? old, Tensor? reference, Tensor adv, Tensor mask, GrpoOptions o)
    {
        static string S(Tensor t) => "[" + string.Join(",", t.shape) + "]";
        if (logps.dim() != 2) throw new ArgumentException($"logps must be [N, C], got {S(logps)}", nameof(logps));
        if (!logps.is_floating_point()) throw new ArgumentException($"logps must be floating point, got {logps.dtype}", nameof(logps));
        void Same(Tensor? t, string name)
        {
            if (t is not null && !t.shape.SequenceEqual(logps.shape))
                throw new ArgumentException($"{name} has shape {S(t)}, logps has {S(logps)}", name);
        }
        Same(old, "oldLogps");
        Same(reference, "refLogps");
        Same(mask, "completionMask");
        if (adv.numel() != logps.shape[0]) throw new ArgumentException($"advantages has {adv.numel()} values for {logps.shape[0]} completions", "advantages");
        if (o.Beta != 0 && reference is null) throw new ArgumentException($"Beta = {o.Beta} needs reference log-probs (refLogps is null)", "refLogps");
        if (o.LossType == LossType.DrGrpo && logps.shape[1] > o.MaxCompletionLength)
            throw new ArgumentException($"completions have {logps.shape[1]} tokens, more than MaxCompletionLength = {o.MaxCompletionLength} (the dr_grpo constant)", nameof(logps));
    }
}
