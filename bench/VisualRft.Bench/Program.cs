using System.Diagnostics;
using TorchSharp;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using static TorchSharp.torch;

// Benchmarks on the CPU. `rollout`: the figures of issue 11 in one run (tiny decode step and rollout, GRPO pass split,
// decode beside a busy core, 1 vs 2 threads, 2B construction, load and decode against the bandwidth bound).
// `model`: prefill and decode throughput of the Qwen2-VL port for the tiny configuration and the real 2B configuration
// (random weights), decode time against the memory-bandwidth bound, and the KV-cache speed-up over recomputing the whole
// sequence for every token. `grpo`: the GRPO step of the tiny model (time split, rollout tokens/s at G = 8 and 64 new
// tokens, KV cache vs recompute, peak memory). `serve [SOAK_SECONDS]`: vrft score's lines/s beside the reward server's
// completions/s over loopback (no libtorch; ServeBench). `runner [CELLS]`: memory of `vrft run` per 1,000 cells of a long
// notebook (default 1,000 cells; 2,000 reach about 650 MB resident). `memory`: MemoryPlan's activations and gradients
// against the measured peak of a GRPO update (a tiny-shaped and a 2B-shaped model, with and without checkpointing).
if (args.Length is 1 or 2 && args[0] == "serve")
    return VisualRft.Bench.ServeBench.Run(args.Length == 2 && int.TryParse(args[1], out var soak) && soak > 0 ? soak : 0);
if (args is ["runner"] or ["runner", _])
    return VisualRft.Bench.RunnerBench.Run(args.Length == 2 && int.TryParse(args[1], out var n) && n >= 2 * VisualRft.Bench.RunnerBench.Every ? n : 1000);
if (args is ["memory", var index] && int.TryParse(index, out var i))
    return VisualRft.Bench.MemoryBench.Run(i);
if (args.Length != 1 || args[0] is not ("rollout" or "model" or "grpo" or "memory"))
{
    Console.Error.WriteLine("usage: dotnet run --project bench/VisualRft.Bench -c Release -- rollout|model|grpo|memory|serve [SOAK_SECONDS]|runner [CELLS >= 500]");
    return 2;
}
TorchRuntime.EnsureLoaded();
Console.WriteLine(TorchRuntime.Describe());
if (args[0] == "rollout") return VisualRft.Bench.RolloutBench.Run();
if (args[0] == "grpo") return VisualRft.Bench.GrpoBench.Run();
if (args[0] == "memory") return VisualRft.Bench.MemoryBench.Run();
var bandwidth = ModelBench.CopyBandwidth();
Console.WriteLine($"copy bandwidth (read + write): {bandwidth / 1e9:F1} GB/s");
ModelBench.Run("tiny (Qwen2-VL code path, 64 wide)", Qwen2VLConfig.Tiny(), ScalarType.Float32, batch: 8, prompt: 64, newTokens: 32, recomputeTokens: 32, bandwidth);
ModelBench.Run("Qwen2-VL-2B shapes, random weights", Qwen2VLConfig.Qwen2VL2B(), ScalarType.BFloat16, batch: 1, prompt: 32, newTokens: 6, recomputeTokens: 3, bandwidth);
return 0;

static class ModelBench
{
    /// <summary>Bytes moved per second by copying a 256 MB float tensor on every core (the copy reads and writes every byte).</summary>
    public static double CopyBandwidth()
    {
        var threads = torch.get_num_threads();
        torch.set_num_threads(Environment.ProcessorCount);
        using var restore = new Restore(() => torch.set_num_threads(threads));
        using var a = torch.randn(64L << 20);
        using var b = torch.empty_like(a);
        b.copy_(a);
        const int reps = 5;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) b.copy_(a);
        return 2.0 * a.NumberOfElements * 4 * reps / sw.Elapsed.TotalSeconds;
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        return v[v.Count / 2];
    }

    public static void Run(string label, Qwen2VLConfig cfg, ScalarType dtype, int batch, int prompt, int newTokens, int recomputeTokens, double bandwidth)
    {
        Console.WriteLine($"\n== {label}, {dtype}, batch {batch}, prompt {prompt} tokens");
        var sw = Stopwatch.StartNew();
        using var model = Qwen2VLForConditionalGeneration.Create(cfg, seed: 0, torch.CPU, dtype);
        model.eval();
        Console.WriteLine($"built in {sw.Elapsed.TotalSeconds:F1} s");
        // Text-only prompts from ordinary token ids (below every special id).
        using var ids = torch.randint(0, Math.Min(cfg.ImageTokenId, 150_000), [batch, prompt], generator: new Generator(1));
        using var mask = torch.ones_like(ids);
        var greedy = new SamplingOptions(MaxNewTokens: 2, Greedy: true);
        using (model.Generate(ids, mask, null, greedy)) { }   // warm-up

        double prefill;
        using (torch.no_grad())
        {
            sw.Restart();
            using var last = model.Forward(ids, mask, null, logitsToKeep: 1);
            prefill = sw.Elapsed.TotalSeconds;
        }
        sw.Restart();
        using (model.Generate(ids, mask, null, greedy with { MaxNewTokens = 1 })) { }
        var one = sw.Elapsed.TotalSeconds;
        sw.Restart();
        using (model.Generate(ids, mask, null, greedy with { MaxNewTokens = newTokens })) { }
        var step = (sw.Elapsed.TotalSeconds - one) / (newTokens - 1);

        // Naive decoding: a full forward over the growing sequence for every new token.
        double recompute;
        using (torch.no_grad())
        {
            var seq = ids.clone();
            sw.Restart();
            for (int i = 0; i < recomputeTokens; i++)
            {
                using var scope = NewDisposeScope();
                var next = model.Forward(seq, torch.ones_like(seq), null, logitsToKeep: 1).argmax(-1);
                var grown = torch.cat([seq, next], 1).MoveToOuterDisposeScope();
                seq.Dispose();
                seq = grown;
            }
            recompute = sw.Elapsed.TotalSeconds / recomputeTokens;
            seq.Dispose();
        }

        // Decoding reads every decoder weight once per step; the tied head reads the embedding matrix.
        var textBytes = model.named_parameters().Where(p => !p.name.StartsWith("visual.")).Sum(p => p.parameter.NumberOfElements * p.parameter.ElementSize);
        var bound = textBytes / bandwidth;   // a stream of reads can move what a copy moves in reads + writes
        Console.WriteLine($"prefill: {prefill * 1e3:F1} ms, {batch * prompt / prefill:F0} tokens/s");
        Console.WriteLine($"decode (KV cache): {step * 1e3:F1} ms/step, {batch / step:F1} tokens/s");
        Console.WriteLine($"decode bound: {textBytes / 1e6:F2} MB of decoder weights per step / {bandwidth / 1e9:F1} GB/s = {bound * 1e3:F3} ms; measured/bound = {step / bound:F2}");
        Console.WriteLine($"recompute: {recompute * 1e3:F1} ms/token (prompt {prompt}..{prompt + recomputeTokens}); KV-cache speed-up {recompute / step:F1}x");
        TorchRuntime.TrimNativeMemory();
    }
}
