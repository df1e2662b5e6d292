using TorchSharp;
using VisualRft.Torch;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace VisualRft.Training;

/// <summary>Gradient norm, clipping and the non-finite check, over the parameters that hold a gradient.</summary>
public static class GradientTools
{
    /// <summary>
    /// Global 2-norm of all gradients, computed like <c>torch.nn.utils.clip_grad_norm_</c>: the norm of the per-tensor
    /// norms. NaN or inf when any gradient is non-finite (or the float32 sum overflows).
    /// </summary>
    public static double GlobalNorm(IEnumerable<Parameter> parameters)
    {
        using var finalizers = FinalizerGate.Hold();
        using var scope = NewDisposeScope();
        var norms = parameters.Select(p => p.grad).OfType<Tensor>().Select(g => linalg.vector_norm(g, 2)).ToList();
        if (norms.Count == 0) return 0;
        return linalg.vector_norm(stack(norms), 2).to_type(ScalarType.Float64).item<double>();
    }

    /// <summary>
    /// Scales the gradients by min(1, maxNorm / (norm + 1e-6)) — <c>clip_grad_norm_</c>'s rule — given their
    /// pre-clip <paramref name="norm"/>. maxNorm = 0 leaves them alone.
    /// </summary>
    public static void Clip(IEnumerable<Parameter> parameters, double norm, double maxNorm)
    {
        if (maxNorm <= 0) return;
        var coef = maxNorm / (norm + 1e-6);
        if (coef >= 1) return;
        using var _ = no_grad();
        foreach (var p in parameters)
            p.grad?.mul_(coef);
    }

    /// <summary>Name of the first parameter whose gradient holds a NaN or inf, or null when all are finite.</summary>
    public static string? FirstNonFinite(IEnumerable<(string Name, Parameter Parameter)> parameters)
    {
        using var scope = NewDisposeScope();
        foreach (var (name, p) in parameters)
            if (p.grad is { } g && !g.isfinite().all().item<bool>()) return name;
        return null;
    }
}
