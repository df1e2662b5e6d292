using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>Qwen2RMSNorm: normalise in float32, cast back, then scale (spec §5.2: cast before the weight).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    public readonly Parameter weight;

    public RmsNorm(long dim, double eps, Device? device = null, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(torch.ones(dim, dtype: dtype, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var f32 = x.dtype == ScalarType.Float32;   // no casts then: a decode step of a small model pays per operation
        var xf = f32 ? x : x.to_type(ScalarType.Float32);
        xf = xf * torch.rsqrt(xf.pow(2).mean([-1L], keepdim: true) + eps);
        return (weight * (f32 ? xf : xf.to_type(x.dtype))).MoveToOuterDisposeScope();
    }
}
