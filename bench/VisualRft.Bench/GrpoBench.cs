using System.Diagnostics;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Grpo;
using VisualRft.Models.Qwen2VL;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Bench;

/// <summary>
/// The GRPO step of the shipped tiny model on the few-shot detection task: median time per phase, rollout throughput at
/// G = 8 and 64 new tokens with the KV cache and with full recompute, and the process's peak resident memory.
/// </summary>
static class GrpoBench
{
    public static int Run()
    {
        var data = SyntheticDatasets.Load("shapes-detection", shots: 4, testSize: 1);
        using var policy = TinyQwen2Vl.Pretrained();
        Console.WriteLine($"tiny model: {policy.Model.parameters().Sum(p => p.numel()):N0} parameters, vocabulary {policy.Processor.Tokenizer.VocabSize}");
        ProcessMemory.ResetPeak();

        // 1. GRPO steps: the paper's objective (β 0.04, μ 1), one prompt × G = 8 per step, up to 64 new tokens.
        var options = GrpoOptions.VisualRftPaper with { LearningRate = 1e-5, MaxCompletionLength = 64, GradientAccumulation = 1 };
        const int warmup = 2, steps = 12;
        using (var trainer = new GrpoTrainer(policy, data.Train, TaskReward.Create(VisualTask.Detection), options, warmup + steps))
        {
            var timed = trainer.Train().Skip(warmup).Select(e => e.Metrics).ToList();
            double Median(Func<StepMetrics, double> f) { var v = timed.Select(f).Order().ToList(); return v[v.Count / 2]; }
            Console.WriteLine($"\n== GRPO step, G = {options.NumGenerations}, ≤ {options.MaxCompletionLength} new tokens, medians of n = {timed.Count}");
            Console.WriteLine($"total {Median(m => m.Time.TotalMs):F0} ms = generate {Median(m => m.Time.GenerateMs):F0} + reference {Median(m => m.Time.ReferenceMs):F0}"
                + $" + policy {Median(m => m.Time.PolicyMs):F0} + optimizer {Median(m => m.Time.OptimizerMs):F0} ms;"
                + $" completion length {timed.Average(m => m.CompletionLength):F1} tokens; {Median(m => m.TokensPerSecond):F0} generated tokens/s");
        }
        Console.WriteLine($"peak RSS during GRPO steps: {ProcessMemory.PeakMb():F0} MB");

        // 2. Rollouts of exactly 64 tokens (no stop token), KV cache vs a full forward per token.
        var batch = policy.Encode([data.Train[0]]);
        using var ids = batch.InputIdsTensor();
        using var mask = batch.AttentionMaskTensor();
        using var grid = batch.ImageGridThwTensor()!;
        Tensor embeds;
        using (no_grad()) embeds = policy.Model.EncodeImages(batch.PixelValuesTensor()!, grid);
        var images = new ImageInputs(embeds, grid);
        const int g = 8, tokens = 64;
        var sampling = new SamplingOptions(MaxNewTokens: tokens, TopK: 50, StopTokenIds: [], PadTokenId: policy.PadTokenId);
        var rng = new Generator(1);
        using (policy.Model.Generate(ids, mask, images, sampling with { MaxNewTokens = 4 }, g, rng)) { }   // warm-up
        var cached = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            using (policy.Model.Generate(ids, mask, images, sampling, g, rng)) { }
            cached.Add(sw.Elapsed.TotalSeconds);
        }
        var kv = cached.Order().ElementAt(2);
        var recompute = Recompute(policy.Model, ids, mask, images, g, tokens, rng);
        Console.WriteLine($"\n== rollout, G = {g} × {tokens} new tokens, prompt {ids.shape[1]} tokens (16 of them image)");
        Console.WriteLine($"KV cache: {kv * 1e3:F0} ms (median of 5), {g * tokens / kv:F0} tokens/s");
        Console.WriteLine($"recompute: {recompute * 1e3:F0} ms, {g * tokens / recompute:F0} tokens/s; KV-cache speed-up {recompute / kv:F1}x");
        Console.WriteLine($"peak RSS over the whole run: {ProcessMemory.PeakMb():F0} MB");
        return 0;
    }

    /// <summary>Sampling without a cache: the whole [prompt ; completion so far] goes through the model for every token.</summary>
    static double Recompute(Qwen2VLForConditionalGeneration model, Tensor ids, Tensor mask, ImageInputs images, int g, int tokens, Generator rng)
    {
        using var _ = no_grad();
        var rows = model.RepeatForSamples(images, ids, g);
        var seq = ids.repeat_interleave(g, 0);
        var seqMask = mask.repeat_interleave(g, 0);
        var sw = Stopwatch.StartNew();
        for (int t = 0; t < tokens; t++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(seq, seqMask, rows, logitsToKeep: 1).squeeze(1);
            var (values, indexes) = logits.topk(50);
            var next = indexes.gather(-1, values.softmax(-1).multinomial(1, generator: rng));
            var grown = torch.cat([seq, next], 1).MoveToOuterDisposeScope();
            var grownMask = torch.cat([seqMask, torch.ones_like(next)], 1).MoveToOuterDisposeScope();
            seq.Dispose();
            seqMask.Dispose();
            (seq, seqMask) = (grown, grownMask);
        }
        var seconds = sw.Elapsed.TotalSeconds;
        seq.Dispose();
        seqMask.Dispose();
        return seconds;
    }
}
