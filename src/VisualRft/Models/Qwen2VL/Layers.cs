using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>Rotary-embedding helpers shared by the vision tower (2D) and the decoder (M-RoPE).</summary>
public static class Rope
{
    /// <summary>1 / theta^(2j/dim), j = 0..dim/2-1, in float32 as HF computes it.</summary>
    public static Tensor InverseFrequencies(double theta, int dim)
    {
        using var exps = torch.arange(0, dim, 2, dtype: ScalarType.Int64).to_type(ScalarType.Float32) / dim;
        using var b = torch.tensor((float)theta);
        using var p = b.pow(exps);
        return 1.0f / p;
    }

    /// <summary>rotate_half: cat(-x[half:], x[:half]).</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        var half = x.shape[^1] / 2;
        using var x1 = x.narrow(-1, 0, half);
        using var x2 = x.narrow(-1, half, half);
        using var neg = -x2;
        return torch.cat([neg, x1], -1);
    }
}

/// <summary>
/// Rotary tables laid out to broadcast over heads: <see cref="Cos"/> and <see cref="SignedSin"/> are [N, S, 1, head_dim],
/// and the sine's first half is negated. Then x·cos + rotate_half(x)·sin, the HF formula, is x·cos + roll(x, d/2)·sin±:
/// the same products (a sign moves from x to sin, which is exact) in three operations instead of seven, which is what a
/// decode step of a small model pays for.
/// </summary>
public sealed record Rotary(Tensor Cos, Tensor SignedSin)
{
    /// <summary>Tables from cos and sin of shape [N, S, D]: the layout above.</summary>
    public static Rotary FromCosSin(Tensor cos, Tensor sin)
    {
        var half = sin.shape[^1] / 2;
        var signed = torch.cat([-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)], -1);
        return new Rotary(cos.unsqueeze(2), signed.unsqueeze(2));
    }

    /// <summary>Rotates x [N, S, H, D] (any strides).</summary>
    public Tensor Apply(Tensor x) => torch.addcmul(x * Cos, x.roll(x.shape[^1] / 2, -1), SignedSin, One);

    static readonly Scalar One = 1.0;

    /// <summary>Positions [start, start + length) of every row: a decode step's slice of a rollout's tables.</summary>
    public Rotary Narrow(long start, long length) => new(Cos.narrow(1, start, length), SignedSin.narrow(1, start, length));
}

/// <summary>Activation functions by their Hugging Face <c>hidden_act</c> names.</summary>
public static class Activations
{
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "silu" or "swish" => nn.functional.silu(x),
        "quick_gelu" => QuickGelu(x),
        "gelu" => nn.functional.gelu(x),
        "gelu_pytorch_tanh" or "gelu_new" => nn.functional.gelu(x, GELU.Approximate.tanh),
        _ => throw new NotSupportedException($"hidden_act '{name}' is not supported (silu, quick_gelu, gelu, gelu_pytorch_tanh)"),
    };

    static Tensor QuickGelu(Tensor x)
    {
        using var z = x * 1.702;
        using var s = z.sigmoid();
        return x * s;
    }
}

/// <summary>
/// Linear layers with parameters allocated but not initialised (<c>torch.empty</c>): a model is either loaded or
/// initialised as a whole afterwards (<see cref="Qwen2VLForConditionalGeneration.Create"/>), so TorchSharp's per-layer
/// Kaiming init would be work thrown away — 40–100 s for the 2B model.
/// </summary>
public static class Layer
{
    public static Linear Linear(long inFeatures, long outFeatures, bool bias, Device? device, ScalarType? dtype) =>
        nn.Linear(new Parameter(torch.empty(outFeatures, inFeatures, dtype, device)),
            bias ? new Parameter(torch.empty(outFeatures, dtype, device)) : null);

    /// <summary>x·Wᵀ + b; a single bfloat16 row without autograd goes through <see cref="Bf16RowProduct"/>.</summary>
    public static Tensor Project(Tensor x, Tensor weight, Tensor? bias = null) =>
        Bf16RowProduct.Applies(x, weight) ? Bf16RowProduct.Linear(x, weight, bias) : nn.functional.linear(x, weight, bias);

    /// <summary>The layer's product, by <see cref="Project(Tensor, Tensor, Tensor?)"/>, plus its LoRA update when it has one.</summary>
    public static Tensor Project(this Linear layer, Tensor x)
    {
        if (LoraAdapters.Active(layer) is not { } lora) return Project(x, layer.weight, layer.bias);
        using var y = Project(x, layer.weight, layer.bias);
        using var delta = lora.Delta(x);
        return y + delta;
    }
}

/// <summary>
/// Linear layers that read the same input, stored as row blocks of one matrix. Each part is an ordinary
/// <see cref="Linear"/> whose weight and bias are views of the stacked storage, so the Hugging Face parameters (names,
/// state_dict keys, gradients, optimizer state, in-place loads and updates) are untouched, while a forward without
/// autograd multiplies once by the whole stack: one matmul instead of three for q/k/v, two for gate/up. Not a module:
/// TorchSharp would register its tensors as buffers.
/// </summary>
public sealed class LinearStack : IDisposable
{
    readonly Tensor weight;
    readonly Tensor? bias;
    readonly Parameter[] weights;
    readonly Parameter?[] biases;

    /// <summary>The parts, in stacking order.</summary>
    public Linear[] Parts { get; }

    public LinearStack(long inFeatures, long[] outFeatures, bool hasBias, Device? device, ScalarType? dtype)
    {
        var rows = outFeatures.Sum();
        weight = torch.empty(rows, inFeatures, dtype, device);
        bias = hasBias ? torch.empty(rows, dtype, device) : null;
        var starts = outFeatures.Select((_, i) => outFeatures.Take(i).Sum()).ToArray();
        weights = outFeatures.Select((n, i) => new Parameter(weight.narrow(0, starts[i], n))).ToArray();
        biases = outFeatures.Select((n, i) => bias is null ? null : new Parameter(bias.narrow(0, starts[i], n))).ToArray();
        Parts = weights.Select((w, i) => nn.Linear(w, biases[i])).ToArray();
    }

    /// <summary>
    /// Every part's output, concatenated along the last axis. When autograd records for the parts, or when a part's
    /// parameters were replaced (e.g. by <c>Module.to</c>) and no longer live in the stack, the parts' current weights are
    /// concatenated first, so that gradients reach them.
    /// </summary>
    public Tensor forward(Tensor x)
    {
        var y = Stacked(x);
        var adapters = Parts.Select(LoraAdapters.Active).ToArray();
        if (adapters.All(a => a is null)) return y;
        // the parts' LoRA updates side by side, zeros for a part without one
        using var scope = torch.NewDisposeScope();
        var deltas = adapters.Select((a, i) => a?.Delta(x) ?? torch.zeros([.. x.shape[..^1], Parts[i].weight!.shape[0]], x.dtype, x.device)).ToArray();
        y.add_(torch.cat(deltas, -1));
        return y;
    }

    Tensor Stacked(Tensor x)
    {
        if (InStack() && !(torch.is_grad_enabled() && Parts.Any(p => p.weight.requires_grad || p.bias?.requires_grad == true)))
            return Layer.Project(x, weight, bias);
        using var w = torch.cat(Parts.Select(p => (Tensor)p.weight).ToArray());
        using var b = bias is null ? null : torch.cat(Parts.Select(p => (Tensor)p.bias!).ToArray());
        return nn.functional.linear(x, w, b);
    }

    bool InStack()
    {
        for (int i = 0; i < Parts.Length; i++)
            if (!ReferenceEquals(Parts[i].weight, weights[i]) || !ReferenceEquals(Parts[i].bias, biases[i])) return false;
        return true;
    }

    public void Dispose()
    {
        weight.Dispose();
        bias?.Dispose();
    }
}

/// <summary>SwiGLU MLP, down(act(gate(x)) · up(x)): the Qwen2 decoder MLP (no bias) and the Qwen2.5-VL vision MLP (bias).
/// gate and up are one <see cref="LinearStack"/>.</summary>
public sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    readonly string act;
    readonly LinearStack gateUp;
    public readonly Linear gate_proj, up_proj, down_proj;

    public GatedMlp(long dim, long hidden, bool bias, string act, Device? device, ScalarType? dtype) : base(nameof(GatedMlp))
    {
        this.act = act;
        gateUp = new LinearStack(dim, [hidden, hidden], bias, device, dtype);
        (gate_proj, up_proj) = (gateUp.Parts[0], gateUp.Parts[1]);
        down_proj = Layer.Linear(hidden, dim, bias, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gu = gateUp.forward(x).chunk(2, -1);
        return down_proj.Project(Activations.Apply(act, gu[0]) * gu[1]).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) gateUp.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Token embedding (<c>weight</c> [vocab, dim], not initialised, see <see cref="Layer"/>). TorchSharp's
/// <c>nn.Embedding</c> always builds and initialises its matrix on the CPU in float32 before moving it, which for the 7B
/// vocabulary costs 2 GB and ~20 s even on the meta device; this one allocates where asked.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;

    public TokenEmbedding(long vocab, long dim, Device? device, ScalarType? dtype) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(torch.empty([vocab, dim], dtype: dtype, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.view([.. ids.shape, weight.shape[1]]);
    }
}
