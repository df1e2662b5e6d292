using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Grpo;
using VisualRft.Imaging;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Text;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.GpuBench;

/// <summary>The step that is timed: a model configuration in a dtype, an image of <see cref="ImageSize"/>² pixels, a prompt
/// of <see cref="TextTokens"/> text tokens around its image tokens, <see cref="G"/> completions of <see cref="NewTokens"/>.</summary>
sealed record Shape(string Name, Qwen2VLConfig Config, ScalarType DType, int ImageSize, int TextTokens, int G, int NewTokens)
{
    /// <summary>The reference step of issue 17 (hf_step.py takes the same): Qwen2-VL-2B in bf16, a 448 × 448 image (256
    /// merged image tokens), a 60-token text prompt, G = 8, 256 new tokens.</summary>
    public static Shape Reference { get; } = new("Qwen2-VL-2B shapes", Qwen2VLConfig.Qwen2VL2B(), ScalarType.BFloat16, 448, 60, 8, 256);

    /// <summary>The same code path at sizes this CPU runs in seconds: a tiny configuration with Qwen's vocabulary and ids.</summary>
    public static Shape Tiny { get; } = new("tiny shapes", Qwen2VLConfig.Tiny(vocabSize: QwenIdTokenizer.ModelVocab, imageTokenId: 151_655,
        videoTokenId: 151_656, visionStartTokenId: 151_652, visionEndTokenId: 151_653), ScalarType.BFloat16, 112, 60, 8, 16);

    /// <summary>The vision tower's rows: patches of the image before the spatial merge (448 × 448: 1,024).</summary>
    public int ImagePatches => ImageSize / Config.Vision.PatchSize * (ImageSize / Config.Vision.PatchSize);

    /// <summary>Merged image tokens in the prompt (448 × 448: 256).</summary>
    public int ImageTokens => ImagePatches / (Config.Vision.SpatialMergeSize * Config.Vision.SpatialMergeSize);
}

/// <summary>What one configuration of the step trains.</summary>
/// <param name="Lora">LoRA adapters (the base frozen, the reference = the base with them off), or full parameters with a
/// frozen reference copy.</param>
/// <param name="Checkpointing">Gradient checkpointing per decoder layer and vision block (<see cref="GrpoOptions.GradientCheckpointing"/>).</param>
sealed record StepConfig(string Name, string What, LoraConfig? Lora, bool Checkpointing = false)
{
    public static IReadOnlyList<StepConfig> All { get; } =
    [
        new("full", "full parameters, β 0.04 (a frozen reference copy)", null),
        new("checkpointing", "full parameters with gradient checkpointing per decoder layer and vision block, β 0.04", null, Checkpointing: true),
        new("lora", "LoRA r 64, α 128 on q_proj, v_proj (the reference is the base with the adapters off)",
            new LoraConfig { R = 64, Alpha = 128, TargetModules = ["q_proj", "v_proj"] }),
    ];
}

/// <summary>
/// One GRPO step of Visual-RFT's trainer (the paper's objective) at a <see cref="Shape"/>, twice: the first warms the
/// kernels and the allocator, the second is reported, as hf_step.py reports its second repetition. Generate is the
/// trainer's rollout (vision tower + G samples with the KV cache, top-k 50, T 1); update is the policy's forward, loss
/// and backward, as hf_step.py's update; the reference forward and AdamW are reported beside them.
/// </summary>
static class StepBench
{
    public static int Run(Shape shape, StepConfig config, Device device)
    {
        using var memory = device.type == DeviceType.CUDA ? PeakMemory.ForGpu(device.index < 0 ? 0 : device.index) : PeakMemory.ForCpu();
        memory.Reset();
        var build = Stopwatch.StartNew();
        var model = RandomModel(shape, device);
        if (config.Lora is { } lora) model.AddLora(lora);
        using var policy = new VisionLanguagePolicy(model, new Qwen2VLProcessor(QwenIdTokenizer.Create(), new Qwen2VLImageProcessor()));
        var sample = PromptOf(policy, shape);
        Sync(device);
        var buildS = build.Elapsed.TotalSeconds;
        var promptTokens = shape.ImageTokens + shape.TextTokens;

        var plan = MemoryPlan.For(shape.Config, new MemoryPlanOptions
        {
            NumGenerations = shape.G, PromptTokens = promptTokens, MaxNewTokens = shape.NewTokens, Lora = config.Lora, DType = shape.DType,
            GradientCheckpointing = config.Checkpointing, ImagePatches = shape.ImagePatches,
        });
        Console.WriteLine($"\n== {shape.Name}, {config.What}; {shape.DType} on {device}; {shape.ImageSize} × {shape.ImageSize} image = {shape.ImageTokens} image tokens"
            + $" + {shape.TextTokens} text tokens, G = {shape.G}, {shape.NewTokens} new tokens");
        Console.WriteLine($"model: {model.parameters().Sum(p => p.numel()):N0} parameters, {policy.TrainableParameters().Sum(p => p.Parameter.numel()):N0} trained; "
            + $"random weights, built in {buildS:F1} s");
        Console.WriteLine($"MemoryPlan (counted from the config on the meta device):\n{plan}");

        var options = GrpoOptions.VisualRftPaper with
        {
            NumGenerations = shape.G, MaxCompletionLength = shape.NewTokens, GradientAccumulation = 1, GradientCheckpointing = config.Checkpointing,
        };
        using var trainer = new GrpoTrainer(policy, [sample], TaskReward.Create(VisualTask.Detection), options, totalSteps: 2);
        StepMetrics? metrics = null;
        double stepS = 0;
        for (int i = 0; i < 2; i++)
        {
            var clock = Stopwatch.StartNew();
            metrics = trainer.Step().Metrics;
            Sync(device);   // the last AdamW kernels may still be queued when Step returns
            stepS = clock.Elapsed.TotalSeconds;
            var t = metrics.Time;
            Console.WriteLine($"step {i + 1}: generate {t.GenerateMs / 1e3:F2} s, reference {t.ReferenceMs / 1e3:F2} s, update {t.PolicyMs / 1e3:F2} s, "
                + $"AdamW {t.OptimizerMs / 1e3:F2} s; {stepS:F2} s in all; mean completion {metrics.CompletionLength:F1} tokens{(i == 0 ? " (warm-up)" : "")}");
        }
        var (peak, why) = memory.Peak();
        Console.WriteLine($"{memory.What} over build and both steps: {(peak is { } b ? Gib(b) : why)}; MemoryPlan's peak {Gib(plan.Total)}");
        var m = metrics!;
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["stack"] = "visualrft", ["config"] = config.Name, ["device"] = device.ToString(), ["shape"] = shape.Name,
            ["generate_s"] = Round(m.Time.GenerateMs / 1e3), ["update_s"] = Round(m.Time.PolicyMs / 1e3),
            ["reference_s"] = Round(m.Time.ReferenceMs / 1e3), ["adamw_s"] = Round(m.Time.OptimizerMs / 1e3), ["step_s"] = Round(stepS),
            ["completion_tokens"] = Round(m.CompletionLength), ["peak_gib"] = peak is { } p ? Round(p / (double)(1L << 30)) : null,
            ["peak_measure"] = peak is null ? why : memory.What, ["plan_gib"] = Round(plan.Total / (double)(1L << 30)),
        }));
        return 0;
    }

    static double Round(double v) => Math.Round(v, 3);

    static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";

    static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }

    /// <summary>The config's model on <paramref name="device"/> with the initialisation of
    /// <see cref="Qwen2VLForConditionalGeneration.Create"/> (N(0, 0.02), biases 0, norms 1), drawn on the device: Create draws
    /// every value on the CPU from one generator so that a seed gives the same weights everywhere, and the 2.2 B values
    /// here only need to be random.</summary>
    static Qwen2VLForConditionalGeneration RandomModel(Shape shape, Device device)
    {
        var model = new Qwen2VLForConditionalGeneration(shape.Config, device, shape.DType);
        using var generator = new Generator(1, device);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if ((name.Contains("norm") || name.Contains("ln_q")) && name.EndsWith(".weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, 0.02, generator);
        return model;
    }

    /// <summary>A detection sample at the shape's image size whose question is cut so that the rendered prompt has exactly
    /// <see cref="Shape.TextTokens"/> text tokens.</summary>
    static VisualSample PromptOf(VisionLanguagePolicy policy, Shape shape)
    {
        var sample = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1, imageSize: shape.ImageSize).Train[0];
        int Length(VisualSample s) => policy.Encode([s]).PromptLengths[0];
        var template = Length(sample with { Problem = "" }) - shape.ImageTokens;
        if (template > shape.TextTokens)
            throw new InvalidOperationException($"the chat template alone takes {template} text tokens, more than the shape's {shape.TextTokens}");
        var cut = sample with { Problem = sample.Problem[..(shape.TextTokens - template)] };
        var length = Length(cut);
        if (length != shape.ImageTokens + shape.TextTokens)
            throw new InvalidOperationException($"the prompt has {length} tokens, expected {shape.ImageTokens} image + {shape.TextTokens} text tokens");
        return cut;
    }
}
