using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// Gradient checkpointing of one block (a decoder layer, a vision block): the forward runs without recording, keeping
/// only the block's input; the backward runs the block again with recording on and back-propagates through that copy,
/// so a block's activations live only while its own gradients are computed. The reentrant scheme of PyTorch's
/// <c>torch.utils.checkpoint</c> (<c>use_reentrant=True</c>, what HF's <c>gradient_checkpointing_enable()</c> used for
/// years), built on TorchSharp's custom autograd function. Parameter gradients accumulate into <c>.grad</c> from the
/// inner backward; the input's gradient is handed back to the outer graph.
/// </summary>
sealed class GradientCheckpoint : autograd.SingleTensorFunction<GradientCheckpoint>
{
    public override string Name => nameof(GradientCheckpoint);

    /// <summary>Blocks recomputed so far in this process (what a test reads to see that checkpointing acted).</summary>
    internal static long Recomputed => Interlocked.Read(ref recomputed);
    static long recomputed;

    /// <summary>
    /// block(x, extras) with its activations recomputed in the backward. <paramref name="extras"/> are the other tensors the
    /// block reads (rotary tables, attention bias): the graph keeps them, since the caller's dispose scope frees its own
    /// long before the backward. The block must compute the same values twice: nothing random (the model refuses LoRA
    /// dropout with checkpointing) and no cache.
    /// </summary>
    public static Tensor Run(Func<Tensor, IReadOnlyList<Tensor>, Tensor> block, Tensor x, params Tensor[] extras)
    {
        // The autograd function records only when an input needs a gradient; under LoRA the embeddings are frozen, so the
        // first layer's input does not, and without this the adapters inside would get none (HF's
        // enable_input_require_grads answers the same problem).
        if (!x.requires_grad) x = x.detach().requires_grad_(true);
        return apply([block, x, .. extras]);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var block = (Func<Tensor, IReadOnlyList<Tensor>, Tensor>)vars[0];
        var tensors = vars.Skip(1).Cast<Tensor>().ToList();
        ctx.save_for_backward(tensors);
        ctx.save_data("block", block);
        using var scope = NewDisposeScope();
        return block(tensors[0], tensors[1..]).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var block = (Func<Tensor, IReadOnlyList<Tensor>, Tensor>)ctx.get_data("block");
        // Its own scope: the recomputed activations are freed here, not at the end of the training step (the callback
        // may also run on an autograd worker thread, which has no scope of the caller's).
        Interlocked.Increment(ref recomputed);
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var x = saved[0].detach().requires_grad_(true);
        using (enable_grad())
        {
            var y = block(x, saved[1..]);
            autograd.backward([y], [gradOutput]);
        }
        // One gradient per argument: none for the block and the extras, which need none.
        return [null!, x.grad!.MoveToOuterDisposeScope(), .. saved.Skip(1).Select(_ => (Tensor)null!)];
    }
}
