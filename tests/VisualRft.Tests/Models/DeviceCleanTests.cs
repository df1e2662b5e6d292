using System.Text.RegularExpressions;
using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Tests.Grpo;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>
/// Device-clean code without a GPU. On torch's <c>meta</c> device tensors have shapes and no data, and an operation that
/// meets a tensor made on the CPU by default throws, so the GRPO loss running there shows that it makes every tensor on
/// the log-probs' device. Its backward and the model's forward cannot run there: libtorch alone has no meta kernel for
/// logical_and (in minimum's backward), index_select or the batch-norm behind LayerNorm (PyTorch registers those in
/// Python). So the tensor factories of the model, the
/// trainer, the policy and the evaluation are read from the source instead: each names its device, or is a host-side
/// table listed below with the reason it may stay on the CPU.
/// </summary>
public sealed class DeviceCleanTests
{
    static readonly Device Meta = new(DeviceType.META);

    [Fact]
    public void The_GRPO_loss_runs_on_the_meta_device()
    {
        using var scope = NewDisposeScope();
        const int n = 6, c = 5;
        var logps = randn([n, c], device: Meta);
        var mask = ones([n, c], ScalarType.Bool, Meta);
        var (loss, ratio, kl, tokenMask, a) = GrpoLoss.Loss(logps, logps.detach(), logps.detach() - 0.1, zeros(n, device: Meta), mask,
            TinyTrainerFixture.Options with { NumGenerations = 3 });
        Assert.All(new[] { loss, ratio, kl!, tokenMask, a }, t => Assert.Equal(DeviceType.META, t.device_type));
        Assert.Equal(DeviceType.META, GrpoLoss.KlK3(logps, logps.detach()).device_type);
    }

    /// <summary>Factories that may make a CPU tensor: each builds host-side data (read back with item(), or computed from
    /// host arrays) that its caller moves to the device in the same expression or the next one.</summary>
    static readonly (string File, string Code, string Why)[] HostSide =
    [
        ("Models/Qwen2VL/Qwen2VLForConditionalGeneration.Checkpoint.cs", "torch.randn(p.shape, dtype: ScalarType.Float32, generator: g)",
            "initial weights from a CPU generator, so a seed gives the same model on every device; copied into the parameter"),
        ("Models/Qwen2VL/Qwen2VLForConditionalGeneration.Generation.cs", "torch.tensor(gridRows.ToArray(), [gridRows.Count / 3, 3], ScalarType.Int64)",
            "image grids are host metadata (read with item() to split patches)"),
        ("Models/Qwen2VL/Layers.cs", "torch.arange(0, dim, 2, dtype: ScalarType.Int64)", "rope inverse frequencies, moved by each caller"),
        ("Models/Qwen2VL/Layers.cs", "torch.tensor((float)theta)", "rope inverse frequencies, moved by each caller"),
        ("Models/Qwen2VL/RopeIndex.cs", "torch.tensor(pos, [3, n, s], ScalarType.Int64)", "M-RoPE positions computed from host arrays; moved where they are used"),
        ("Models/Qwen2VL/RopeIndex.cs", "torch.tensor(deltas, [n, 1], ScalarType.Int64)", "rope deltas, read on the host"),
        ("Models/Qwen2VL/VisionTower.cs", "torch.arange(maxSide, dtype: ScalarType.Float32)", "vision rotary table, moved to the patches' device"),
        ("Models/Qwen2VL/VisionTower.cs", "torch.tensor(pos.ToArray(), dtype: ScalarType.Int64)", "vision rotary positions, moved to the patches' device"),
        ("Models/Qwen2VL/Bf16RowProduct.cs", "torch.empty(n, ScalarType.Float32)", "the bf16 row product is a CPU kernel (it applies to CPU tensors only)"),
        ("Grpo/Update.cs", "tensor(batch.Advantages)", "plain advantages from the rollout record; moved to the log-probs' device in PolicyLoss"),
    ];

    static readonly Regex Factory = new(@"\b(?:torch\.)?(?:tensor|zeros|ones|arange|empty|full|randn|rand|randint|eye|linspace)\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)", RegexOptions.CultureInvariant);

    [Fact]
    public void Every_tensor_factory_names_its_device_or_is_a_listed_host_side_table()
    {
        var src = Path.Combine(Golden.RepoRoot, "src", "VisualRft");
        var found = new List<(string File, string Code)>();
        foreach (var folder in new[] { "Models", "Grpo", "Evaluation", "Policy" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(src, folder), "*.cs", SearchOption.AllDirectories))
                foreach (var line in File.ReadLines(file))
                {
                    var code = line.Split("//")[0];
                    if (code.TrimStart().StartsWith("///")) continue;
                    foreach (Match m in Factory.Matches(code))
                        if (!Regex.IsMatch(m.Value, @"\b[Dd]evice\b|\bMeta\b"))
                            found.Add((Path.GetRelativePath(src, file).Replace('\\', '/'), m.Value));
                }
        var allowed = HostSide.Select(h => (h.File, h.Code)).ToHashSet();
        Assert.True(found.All(allowed.Contains), "tensor factories without a device (name it, or list it in HostSide with why): "
            + string.Join("; ", found.Where(f => !allowed.Contains(f)).Select(f => $"{f.File}: {f.Code}")));
        Assert.True(allowed.All(found.Contains), "HostSide lists factories that are gone: " + string.Join("; ", allowed.Where(a => !found.Contains(a))));
    }
}
