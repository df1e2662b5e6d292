using System.Diagnostics;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

// Stage 4 of a GRPO step: the policy-gradient update on a scored batch, through the rollout's own tensors.

public sealed partial class GrpoTrainer
{
    /// <summary>
    /// μ optimizer steps on one scored batch (the whole batch is one accumulation). Can be repeated: each call is another
    /// step on the same completions (the image features are recomputed once the rollout's own graph has been used).
    /// </summary>
    public UpdateResult Update(AdvantageBatch batch)
    {
        using var call = Enter();
        return Apply([(batch, TensorsOf(batch.Rollout))]);
    }

    /// <summary>The tensors a rollout's handle holds, or an error that says what to do.</summary>
    RolloutTensors TensorsOf(RolloutGroup rollout)
    {
        if (rollout.Handle.Trainer != this)
            throw new InvalidOperationException("this rollout was not made by this trainer; run trainer.Rollout(...) and score that");
        return rollout.Handle.Tensors ?? throw new InvalidOperationException("this rollout's tensors were released (the trainer keeps those "
            + $"of its last {HeldRollouts} rollouts); run trainer.Rollout(...) again and score that");
    }

    UpdateResult Apply(IReadOnlyList<(AdvantageBatch Batch, RolloutTensors Tensors)> micro)
    {
        double policyMs = 0, optimizerMs = 0, loss = 0, clip = 0;
        double? kl = null;
        OptimizerStepResult? step = null;
        var logps = new List<float[]>();
        List<float[]>? tokenKl = Options.UsesReference ? [] : null;
        var dapoTokens = micro.Sum(m => m.Tensors.GeneratedTokens);
        for (int iteration = 0; iteration < Options.Mu; iteration++)
        {
            var clock = Stopwatch.StartNew();
            foreach (var (batch, tensors) in micro)
            {
                using var scope = NewDisposeScope();
                var (result, lp) = PolicyLoss(Policy.Model, tensors, tensor(batch.Advantages), Options, micro.Count,
                    Options.LossType == LossType.Dapo ? dapoTokens : null);
                Optimizer.Backward(result.Loss);
                loss += result.LossValue / Options.Mu;
                clip += result.ClipRegion / micro.Count / Options.Mu;
                if (result.MeanKl is { } k) kl = (kl ?? 0) + k / micro.Count / Options.Mu;
                if (iteration == 0)
                {
                    var (n, c) = ((int)lp.shape[0], (int)lp.shape[1]);
                    logps.AddRange(Rows<float>(lp, n, c));
                    if (tokenKl is not null) tokenKl.AddRange(Rows<float>(result.TokenKl!, n, c));
                }
            }
            policyMs += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            step = Optimizer.Step();
            optimizerMs += clock.Elapsed.TotalMilliseconds;
        }
        var reason = step!.SkipReason;
        var poisoned = micro.Select(m => m.Batch.NonFiniteReason).FirstOrDefault(r => r is not null);
        if (step.Skipped && poisoned is not null) reason = poisoned + "; " + reason;
        return new UpdateResult(loss, kl, clip, step.GradNorm, step.LearningRate, step.Skipped, reason, policyMs, optimizerMs,
            step.Step, logps, tokenKl);
    }

    /// <summary>
    /// The policy's log-probs of a rollout's completions (with gradient) and the GRPO loss on them: what every update
    /// backpropagates. The first pass reuses the rollout's image embeddings and their graph; later passes (μ &gt; 1, a
    /// repeated update) encode the pixels again, with the weights as they are now
    /// (<see cref="PromptTensors.CompletionLogProbs"/>).
    /// </summary>
    internal static (GrpoLossResult Loss, Tensor LogProbs) PolicyLoss(Qwen2VLForConditionalGeneration model, RolloutTensors t,
        Tensor advantages, GrpoOptions options, int accumulation, double? dapoTokens)
    {
        var logps = t.Prompts.CompletionLogProbs(model, t.CompletionIds, t.CompletionMask, options.Temperature);
        return (GrpoLoss.Compute(logps, t.OldLogps, t.RefLogps, advantages.to(logps.device), t.CompletionMask, options, accumulation, dapoTokens), logps);
    }
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
/// <param name="TokenKl">Per completion, per token: the k3 KL the (first) loss used (<see cref="GrpoLossResult.TokenKl"/>);
/// null without a reference.</param>
public sealed record UpdateResult(double Loss, double? Kl, double ClipFraction, double GradNorm, double LearningRate,
    bool Skipped, string? SkipReason, double PolicyMs, double OptimizerMs, int OptimizerStep,
    IReadOnlyList<float[]> LogProbs, IReadOnlyList<float[]>? TokenKl);
