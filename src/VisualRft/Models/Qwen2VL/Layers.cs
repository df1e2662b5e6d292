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

/// <summary>SwiGLU MLP, down(act(gate(x)) · up(x)): the Qwen2 decoder MLP (no bias) and the Qwen2.5-VL vision MLP (bias).</summary>
public sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    readonly string act;
    public readonly Linear gate_proj, up_proj, down_proj;

    public GatedMlp(long dim, long hidden, bool bias, string act, Device? device, ScalarType? dtype) : base(nameof(GatedMlp))
    {
        this.act = act;
        gate_proj = nn.Linear(dim, hidden, hasBias: bias, device: device, dtype: dtype);
        up_proj = nn.Linear(dim, hidden, hasBias: bias, device: device, dtype: dtype);
        down_proj = nn.Linear(hidden, dim, hasBias: bias, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(Activations.Apply(act, gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Token embedding (<c>weight</c> [vocab, dim]). TorchSharp's <c>nn.Embedding</c> always builds and initialises its
/// matrix on the CPU in float32 before moving it, which for the 7B vocabulary costs 2 GB and ~20 s even on the meta
/// device; this one allocates where asked.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;

    public TokenEmbedding(long vocab, long dim, Device? device, ScalarType? dtype) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(torch.empty([vocab, dim], dtype: dtype, device: device));
        using (torch.no_grad()) weight.normal_();
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.view([.. ids.shape, weight.shape[1]]);
    }
}
