using VisualRft.Models.Qwen2VL;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>One prompt's image: pixels and grid as processed, and the policy's embeddings of it.</summary>
internal sealed record PromptImage(Tensor Pixels, Tensor GridThw, Tensor Embeds)
{
    public ImageInputs Inputs => new(Embeds, GridThw);
}

/// <summary>
/// What an update needs from a rollout, kept by the trainer (never handed to a notebook): left-padded prompts [B, P],
/// completion ids and mask [B·G, C], reference log-probs (β ≠ 0), old log-probs (μ &gt; 1) and, per prompt, the policy's
/// image embeddings with their autograd graph — reused by the first policy pass so that the vision tower runs once per
/// prompt. A graph can be walked back only once: after the first update the embeddings are recomputed from the pixels.
/// </summary>
internal sealed class RolloutTensors(Tensor promptIds, Tensor promptMask, IReadOnlyList<PromptImage> images,
    Tensor completionIds, Tensor completionMask, Tensor? refLogps, Tensor? oldLogps) : IDisposable
{
    public Tensor PromptIds { get; } = promptIds;
    public Tensor PromptMask { get; } = promptMask;
    public IReadOnlyList<PromptImage> Images { get; } = images;
    public Tensor CompletionIds { get; } = completionIds;
    public Tensor CompletionMask { get; } = completionMask;
    public Tensor? RefLogps { get; } = refLogps;
    public Tensor? OldLogps { get; } = oldLogps;

    /// <summary>True once a backward pass has consumed the embeddings' graph.</summary>
    public bool GraphSpent { get; set; }

    public int G => (int)(CompletionIds.shape[0] / PromptIds.shape[0]);

    /// <summary>Active completion tokens (the dapo normaliser).</summary>
    public long GeneratedTokens { get { using var s = CompletionMask.sum(); return s.item<long>(); } }

    public void Dispose()
    {
        foreach (var t in new[] { PromptIds, PromptMask, CompletionIds, CompletionMask, RefLogps, OldLogps }) t?.Dispose();
        foreach (var i in Images) { i.Pixels.Dispose(); i.GridThw.Dispose(); i.Embeds.Dispose(); }
    }
}
