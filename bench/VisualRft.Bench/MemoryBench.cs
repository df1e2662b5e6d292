using System.Diagnostics;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Bench;

/// <summary>
/// The memory plan against the measured peak of a GRPO update on this CPU: random weights, one prompt of
/// <c>image</c> × <c>image</c> pixels and a short text, G completions of C tokens; the update is the trainer's own pass
/// (image embeddings with gradient, the policy's log-probs of the completions, a backward). The measured figure is the
/// process's peak resident memory during the update (VmHWM after resetting it) minus its resident memory before — what
/// the plan calls activations and gradients; weights were resident before and are not in it.
/// </summary>
static class MemoryBench
{
    sealed record Case(string Label, Qwen2VLConfig Config, int Image, int TextTokens, int G, int C, LoraConfig? Lora = null, bool Checkpointing = false);

    /// <summary>Every case, each in a process of its own: memory the allocator keeps after one case would hide the next one's.</summary>
    public static int Run(int? only = null)
    {
        var tiny = Qwen2VLConfig.Tiny(hidden: 128, layers: 4, visionWidth: 64, visionDepth: 2, vocabSize: 4096);
        var lora = new LoraConfig { R = 64, Alpha = 128, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] };
        Case[] cases =
        [
            new("tiny-shaped (128 wide, 4 layers), full", tiny, 224, 60, 8, 256),
            new("tiny-shaped, full, checkpointing", tiny, 224, 60, 8, 256, Checkpointing: true),
            new("Qwen2-VL-2B shapes, LoRA r 64", Qwen2VLConfig.Qwen2VL2B(), 112, 20, 2, 16, lora),
            new("Qwen2-VL-2B shapes, LoRA r 64, checkpointing", Qwen2VLConfig.Qwen2VL2B(), 112, 20, 2, 16, lora, Checkpointing: true),
            // Each term alone: the vocabulary-wide logits, a deep decoder, and a deep vision tower on a 448 × 448 image.
            new("logits (vocabulary 32,768, 1 layer)", Qwen2VLConfig.Tiny(hidden: 128, layers: 1, visionWidth: 32, visionDepth: 1, vocabSize: 32768), 56, 60, 8, 256),
            new("decoder (16 layers)", Qwen2VLConfig.Tiny(hidden: 128, layers: 16, visionWidth: 32, visionDepth: 1, vocabSize: 1024), 56, 60, 8, 256),
            new("decoder (16 layers), checkpointing", Qwen2VLConfig.Tiny(hidden: 128, layers: 16, visionWidth: 32, visionDepth: 1, vocabSize: 1024), 56, 60, 8, 256, Checkpointing: true),
            new("vision tower (8 blocks, 1,024 patches)", Qwen2VLConfig.Tiny(hidden: 32, layers: 1, visionWidth: 128, visionDepth: 8, vocabSize: 1024), 448, 10, 1, 4),
        ];
        if (only is { } index)
        {
            TorchRuntime.EnsureLoaded();
            Measure(cases[index]);
            return 0;
        }
        Console.WriteLine("| case | dtype | prompt + new tokens | planned update peak | measured | measured / planned | s |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var self = typeof(MemoryBench).Assembly.Location;
        for (int i = 0; i < cases.Length; i++)
        {
            if (Environment.GetEnvironmentVariable("VRFT_BENCH_CASE") is { } pick && !cases[i].Label.Contains(pick)) continue;
            var start = new ProcessStartInfo(Environment.ProcessPath!, [self, "memory", i.ToString()]) { RedirectStandardOutput = true };
            // glibc keeps freed blocks below its (self-raising) mmap threshold resident, so resident memory would also count
            // what the allocator keeps in reserve; with a fixed low threshold every tensor-sized block is returned when freed,
            // and the peak is what the update holds — the figure torch.cuda.max_memory_allocated gives on a GPU.
            start.Environment["MALLOC_MMAP_THRESHOLD_"] = "65536";
            using var child = Process.Start(start)!;
            Console.Write(child.StandardOutput.ReadToEnd());
            child.WaitForExit();
            if (child.ExitCode != 0) return child.ExitCode;
        }
        return 0;
    }

    static void Measure(Case c)
    {
        var sw = Stopwatch.StartNew();
        using var model = Qwen2VLForConditionalGeneration.Create(c.Config, 1, CPU, ScalarType.Float32);
        if (c.Lora is { } l) model.AddLora(l);
        model.GradientCheckpointing = c.Checkpointing;
        var patches = c.Image / 14;
        var merged = patches * patches / 4;
        var promptTokens = 2 + merged + c.TextTokens;
        var plan = MemoryPlan.For(c.Config, new MemoryPlanOptions
        {
            NumGenerations = c.G, PromptTokens = promptTokens, MaxNewTokens = c.C, Lora = c.Lora, GradientCheckpointing = c.Checkpointing,
            ImagePatches = patches * patches,
        });
        var planned = plan.UpdatePeak;
        var cfg = c.Config;
        var g = new Generator(7);
        var ids = cat([randint(10, 1010, [1, c.TextTokens / 2], generator: g),
            tensor(new long[] { cfg.VisionStartTokenId }).view(1, 1), full([1, merged], (long)cfg.ImageTokenId), tensor(new long[] { cfg.VisionEndTokenId }).view(1, 1),
            randint(10, 1010, [1, c.TextTokens - c.TextTokens / 2], generator: g)], 1);
        var mask = ones_like(ids);
        var pixels = randn([patches * patches, cfg.Vision.PatchDim], generator: g);
        var grid = tensor(new long[] { 1, patches, patches }).view(1, 3);
        var completions = randint(10, 1010, [c.G, c.C], generator: g);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = ProcessMemory.ResidentMb();
        ProcessMemory.ResetPeak();
        using (var scope = NewDisposeScope())
        {
            var images = new ImageInputs(model.EncodeImages(pixels, grid), grid);
            var logps = model.CompletionLogProbs(ids, mask, images, c.G, completions, ones_like(completions));
            logps.mean().backward();
        }
        var measured = (ProcessMemory.PeakMb() - before) * (1 << 20);
        Console.WriteLine($"| {c.Label} | float32 | {promptTokens} + {c.C} × {c.G} | {Mib(planned)} | {Mib((long)measured)} | {measured / planned:F2} | {sw.Elapsed.TotalSeconds:F0} |");
    }

    static string Mib(long bytes) => $"{bytes / (double)(1 << 20):F0} MiB";
}
