using VisualRft.Data;

namespace VisualRft.Experiments;

/// <summary>What the paper scale of one table needs and what it costs.</summary>
/// <param name="Table">The paper table.</param>
/// <param name="Model">The base model: a local Hugging Face folder of Qwen2-VL-2B-Instruct.</param>
/// <param name="Datasets">The <see cref="PaperDatasets"/> names it trains and evaluates on.</param>
/// <param name="Hardware">What the paper's setting needs.</param>
/// <param name="ExpectedTime">Wall time to expect, from the sources.</param>
/// <param name="Plan">The memory plan of a full-parameter GRPO run of the model folder checked (null before a check).</param>
public sealed record PaperScaleRequirements(int Table, string Model, IReadOnlyList<string> Datasets, string Hardware, string ExpectedTime,
    Training.MemoryPlan? Plan = null);

/// <summary>Thrown when the paper scale cannot run here; the message lists everything missing and how to get it.</summary>
public sealed class PaperScaleUnavailableException(string message) : Exception(message);

/// <summary>
/// The <c>paper</c> scale of Tables 2–8: Qwen2-VL-2B from a local Hugging Face folder on the real data, on a GPU.
/// <see cref="Check"/> is what a notebook calls first: it states the hardware and time to expect and refuses, with what
/// is missing and how to get it, when the weights, the data or a CUDA device are absent. Nothing is downloaded.
/// </summary>
public static class PaperScale
{
    const string Gpu = "a CUDA GPU with 80 GB (one A100 80 GB ran 2B at ~74 GB; the paper used 8 GPUs with DeepSpeed ZeRO-3) and a CUDA build of libtorch for TorchSharp";
    const string FewShotTime = "≈1 h for 200 steps on 8 GPUs (13–25 s/step, G = 8; spec §2.4) plus evaluation";

    public static PaperScaleRequirements Requirements(int table) => table switch
    {
        2 => new(2, "Qwen2-VL-2B-Instruct", ["virft-cls-flower-4-shot", "virft-cls-pets37-4shot", "virft-cls-fgvc-aircraft-4-shot", "virft-cls-car196-4shot",
            "flowers102-test", "pets37-test", "fgvc-aircraft-test", "stanford-cars-test", "visual-rft-eval-files"], Gpu,
            FewShotTime + " per data set; evaluation of 17 506 test images (four data sets)"),
        3 => new(3, "Qwen2-VL-2B-Instruct", ["virft-coco-8-cate-4-shot", "coco-2017-val", "visual-rft-eval-files"], Gpu,
            FewShotTime + "; evaluation of the 1 608 few-shot-class pairs of the 2B existence map"),
        4 => new(4, "Qwen2-VL-2B-Instruct", ["virft-lvis-few-shot", "lvis-v1-val", "visual-rft-eval-files"], Gpu,
            FewShotTime + "; evaluation on LVIS v1 val pairs of the 2B existence map"),
        5 => new(5, "Qwen2-VL-2B-Instruct", [], Gpu, "not runnable: the MG data set was not released"),
        6 => new(6, "Qwen2-VL-2B-Instruct", ["lisa-reasonseg"], Gpu + "; SAM ViT-H for gIoU",
            "500 steps for Visual-RFT and SFT (about 2.5× a few-shot run); mIoU on 200 + 779 images"),
        7 => new(7, "Qwen2-VL-2B-Instruct", ["virft-coco-base65", "coco-2017-val", "visual-rft-eval-files"], Gpu,
            "750 steps (the released 2B script: 2 epochs) ≈ 4 h on 8 GPUs; evaluation of 25 067 pairs of the 2B existence map"),
        8 => new(8, "Qwen2-VL-2B-Instruct", ["virft-coco-base65", "lvis-v1-val", "visual-rft-eval-files"], Gpu,
            "the Table 7 model; evaluation of the 13 rare classes' pairs of the 2B LVIS existence map"),
        _ => throw new ArgumentOutOfRangeException(nameof(table), $"the paper's result tables are 2–8, not {table}"),
    };

    /// <summary>
    /// Checks that <paramref name="modelFolder"/> holds a Hugging Face model (config.json and *.safetensors), that every
    /// data set is under <paramref name="dataRoot"/>/NAME, and that a CUDA device is visible (<paramref name="cudaAvailable"/>,
    /// default: ask TorchSharp). Returns the requirements when all is there; otherwise throws
    /// <see cref="PaperScaleUnavailableException"/> naming each missing piece, how to get it, the hardware and the time.
    /// </summary>
    public static PaperScaleRequirements Check(int table, string modelFolder, string dataRoot, bool? cudaAvailable = null)
    {
        var r = Requirements(table);
        var missing = new List<string>();
        if (table == 5) missing.Add("the MG (monster girls) data set, which the authors did not release");
        Training.MemoryPlan? plan = null;
        if (!File.Exists(Path.Combine(modelFolder, "config.json")) || !Directory.Exists(modelFolder) || !Directory.EnumerateFiles(modelFolder, "*.safetensors").Any())
            missing.Add($"model weights: {modelFolder} has no config.json and *.safetensors of {r.Model} (download the Hugging Face repository Qwen/{r.Model} into it)");
        else
        {
            // The run one 80 GB GPU can hold: bf16 weights on float32 master weights, every layer checkpointed.
            try
            {
                plan = Training.MemoryPlan.For(Models.Qwen2VL.Qwen2VLConfig.Load(Path.Combine(modelFolder, "config.json")),
                    new Training.MemoryPlanOptions { DType = TorchSharp.torch.ScalarType.BFloat16, GradientCheckpointing = true });
            }
            catch (InvalidDataException e) { missing.Add($"a readable config.json: {e.Message}"); }
            if (plan?.Refusal(80) is { } tooBig) missing.Add($"memory: {tooBig}");
        }
        foreach (var name in r.Datasets)
        {
            try { PaperDatasets.RequireLocal(name, Path.Combine(dataRoot, name)); }
            catch (FileNotFoundException e) { missing.Add(e.Message); }
        }
        if (!(cudaAvailable ?? Torch.TorchRuntime.DefaultDevice().type == TorchSharp.DeviceType.CUDA))
            missing.Add($"a CUDA device: this process runs {Torch.TorchRuntime.Backend} on the CPU; set VRFT_LIBTORCH to a CUDA PyTorch's torch/lib "
                + $"(or VRFT_LIBTORCH=auto), version {Torch.LibTorchBackend.Expected}, before the first torch call, and check that nvidia-smi sees the GPU");
        if (missing.Count == 0) return r with { Plan = plan };
        throw new PaperScaleUnavailableException(
            $"Table {table} at paper scale needs {Gpu}; expect {r.ExpectedTime}."
            + (plan is null ? "" : $" A full-parameter bf16 GRPO run of this model with gradient checkpointing needs about {plan.Total / (double)(1L << 30):0.0} GiB (`vrft plan` for other settings).")
            + " Missing:\n- " + string.Join("\n- ", missing));
    }
}
