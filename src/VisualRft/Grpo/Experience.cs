using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>
/// One batch of scored rollouts as it flows from Rollout/Score/Advantages into Update: the unit that tiny-grpo calls
/// <c>Experience</c> (anchors.md §D.2). Rows are completions, G consecutive rows per prompt. Log-probs are per
/// completion token, aligned with <see cref="CompletionMask"/>; the model inputs that produced them (pixels, grids)
/// stay with the rollout that the lead's trainer keeps beside this record.
/// </summary>
/// <param name="Sequences">[N, P + C] prompt and completion token ids (prompt left padded, completion right padded).</param>
/// <param name="AttentionMask">[N, P + C] 1 on real tokens.</param>
/// <param name="PromptLength">P: completion token t sits at column P + t.</param>
/// <param name="CompletionMask">[N, C] 1 up to and including the first end token (spec §2.1).</param>
/// <param name="OldLogps">[N, C] log-probs of the policy that sampled, taken without grad before the μ inner updates;
/// null when μ = 1 (then old = current, detached).</param>
/// <param name="RefLogps">[N, C] frozen-reference log-probs; null when β = 0.</param>
/// <param name="Rewards">[N] total reward per completion.</param>
/// <param name="Advantages">[N] group-normalised advantages.</param>
public sealed record Experience(Tensor Sequences, Tensor AttentionMask, int PromptLength, Tensor CompletionMask,
    Tensor? OldLogps, Tensor? RefLogps, Tensor Rewards, Tensor Advantages) : IDisposable
{
    /// <summary>N, the number of completions.</summary>
    public long Count => Sequences.shape[0];

    /// <summary>Active completion tokens (the dapo normaliser when this is the whole accumulated batch).</summary>
    public long CompletionTokens { get { using var s = CompletionMask.sum().to_type(ScalarType.Int64); return s.item<long>(); } }

    /// <summary>Rows [start, start + count): a micro-batch for gradient accumulation. Views, no copy.</summary>
    public Experience Slice(long start, long count)
    {
        if (start < 0 || count < 1 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are outside the {Count} completions");
        Tensor R(Tensor t) => t.narrow(0, start, count);
        return new Experience(R(Sequences), R(AttentionMask), PromptLength, R(CompletionMask),
            OldLogps is null ? null : R(OldLogps), RefLogps is null ? null : R(RefLogps), R(Rewards), R(Advantages));
    }

    /// <summary>Keeps every tensor alive past the current dispose scope.</summary>
    public Experience MoveToOuterDisposeScope()
    {
        foreach (var t in Tensors()) t.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        foreach (var t in Tensors()) t.Dispose();
    }

    IEnumerable<Tensor> Tensors()
    {
        yield return Sequences;
        yield return AttentionMask;
        yield return CompletionMask;
        if (OldLogps is not null) yield return OldLogps;
        if (RefLogps is not null) yield return RefLogps;
        yield return Rewards;
        yield return Advantages;
    }
}
