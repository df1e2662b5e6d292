using VisualRft.Data;
using VisualRft.Models.Qwen2VL;
using VisualRft.TinyModel;
using static TorchSharp.torch;

namespace VisualRft.GpuBench;

/// <summary>
/// Whether the loaded libtorch and shim compute what the CPU computes: the shipped tiny model's logits (float32) for one
/// detection prompt, on the CPU and on the device, in this process. In-process rather than against a file written on the
/// build machine: both runs then use the same libtorch and shim, so a difference is the device's alone and not a
/// difference between the build machine's libtorch 2.10 and the GPU machine's PyTorch.
/// </summary>
static class LogitsCheck
{
    public const double Tolerance = 1e-4;

    public static (double MaxAbsDiff, long Values) Run(Device device)
    {
        // TF32 would round the CUDA matmuls to 10 mantissa bits; the check is about the shim, so both sides are float32
        backends.cuda.matmul.allow_tf32 = false;
        backends.cudnn.allow_tf32 = false;
        var sample = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1).Test[0];
        using var onCpu = TinyQwen2Vl.Pretrained(CPU);
        using var onDevice = TinyQwen2Vl.Pretrained(device);
        var batch = onCpu.Encode([sample]);
        using var a = Logits(onCpu.Model, batch);
        using var b = Logits(onDevice.Model, batch);
        using var diff = (a - b.cpu()).abs().max();
        return (diff.item<float>(), a.numel());
    }

    static Tensor Logits(Qwen2VLForConditionalGeneration model, Text.ProcessorBatch batch)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var grid = batch.ImageGridThwTensor()!;
        var embeds = model.EncodeImages(batch.PixelValuesTensor()!.to(model.Device), grid);
        var logits = model.Forward(batch.InputIdsTensor().to(model.Device), batch.AttentionMaskTensor().to(model.Device), new ImageInputs(embeds, grid));
        return logits.cpu().MoveToOuterDisposeScope();
    }
}
