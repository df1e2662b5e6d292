using System.Diagnostics;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Training;

/// <summary>Supervised fine-tuning settings (the paper's SFT baseline, spec §6.5, and the tiny model's pre-training).</summary>
public sealed record SftOptions
{
    public double LearningRate { get; init; } = 1e-4;
    public int BatchSize { get; init; } = 8;
    public double MaxGradNorm { get; init; } = 1.0;
    public int WarmupSteps { get; init; }
    public double WeightDecay { get; init; }
    public LrSchedule LrSchedule { get; init; } = LrSchedule.Linear;
    public long Seed { get; init; } = 42;
    /// <summary>Recompute each decoder layer and vision block in the backward (HF <c>gradient_checkpointing</c>), as GRPO's
    /// option of the same name.</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>The optimizer knobs in the form <see cref="PolicyOptimizer"/> takes (one micro-batch per step).</summary>
    public OptimizerOptions Optimizer => new()
    {
        LearningRate = LearningRate, MaxGradNorm = MaxGradNorm, WarmupSteps = WarmupSteps, WeightDecay = WeightDecay, LrSchedule = LrSchedule,
    };
}

/// <summary>One SFT step: mean token negative log-likelihood of the targets, and the optimizer's report.</summary>
public sealed record SftStepResult(int Step, double Loss, double LearningRate, double GradNorm, double Milliseconds, bool Skipped, string? SkipReason);

/// <summary>
/// Teacher forcing on target completions: the loss is the mean negative log-likelihood of the target tokens (and the
/// closing <c>&lt;|im_end|&gt;</c>) given the image and prompt. All weights train, vision tower included.
/// </summary>
public sealed class SftTrainer : IDisposable
{
    readonly IReadOnlyList<VisualSample> _train;
    readonly PromptOrder _order;

    public SftTrainer(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> train, SftOptions options, int totalSteps)
    {
        if (train.Count == 0) throw new ArgumentException("the training set is empty", nameof(train));
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        Policy = policy;
        Options = options;
        TotalSteps = totalSteps;
        _train = train;
        _order = new PromptOrder(train.Count, options.Seed);
        Optimizer = new PolicyOptimizer(policy.TrainableParameters(), options.Optimizer, totalSteps);
        policy.Model.GradientCheckpointing = options.GradientCheckpointing;
    }

    public VisionLanguagePolicy Policy { get; }
    public SftOptions Options { get; }
    public PolicyOptimizer Optimizer { get; }
    public int TotalSteps { get; }

    /// <summary>
    /// The completion SFT teaches for a sample: a one-sentence <c>&lt;think&gt;</c> (the paper never supervises the reasoning,
    /// so it stays a plain observation) followed by the dataset's solution, which already is the <c>&lt;answer&gt;</c> block.
    /// </summary>
    public static string Target(VisualSample sample)
    {
        var think = sample.Task switch
        {
            VisualTask.Detection => sample.Boxes.Count switch
            {
                0 => $"There is no {sample.Category} in the image.",
                1 => $"There is one {sample.Category} in the image.",
                var n => $"There are {n} {sample.Category} objects in the image.",
            },
            VisualTask.Classification => "I compare the colour, outline and markings of the shape.",
            _ => "I find the object that the instruction describes.",
        };
        // A pre-training corpus may leave the thinking block out of some answers: the format slip Visual-RFT's format reward fixes.
        if (sample.Metadata.TryGetValue(SampleMetadata.Think, out var t) && t == SampleMetadata.ThinkOmitted) return $"<answer>{Answer(sample.Solution)}</answer>";
        return $"<think>{think}</think><answer>{Answer(sample.Solution)}</answer>";
    }

    static string Answer(string solution)
    {
        var s = solution.Trim();
        const string open = "<answer>", close = "</answer>";
        return s.StartsWith(open) && s.EndsWith(close) ? s[open.Length..^close.Length].Trim() : s;
    }

    public SftStepResult Step()
    {
        var clock = Stopwatch.StartNew();
        using var finalizers = FinalizerGate.Hold();
        var start = (long)Optimizer.StepCount * Options.BatchSize;
        var samples = Enumerable.Range(0, Options.BatchSize).Select(k => _train[_order[start + k]]).ToList();
        double loss;
        using (var scope = NewDisposeScope())
        {
            var l = Loss(Policy, samples);
            loss = l.detach().to_type(ScalarType.Float64).item<double>();
            Optimizer.Backward(l);
        }
        var step = Optimizer.Step();
        return new SftStepResult(step.Step, loss, step.LearningRate, step.GradNorm, clock.Elapsed.TotalMilliseconds, step.Skipped, step.SkipReason);
    }

    /// <summary>Mean token NLL of <see cref="Target"/> for each sample (with gradient when autograd is on).</summary>
    public static Tensor Loss(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples)
    {
        var batch = policy.Encode(samples);
        var device = policy.Device;
        var (completion, completionMask) = EncodeTargets(policy, samples);
        var logps = policy.Model.CompletionLogProbs(batch.InputIdsTensor().to(device), batch.AttentionMaskTensor().to(device),
            completion, completionMask, policy.EncodeImages(batch));
        var m = completionMask.to_type(logps.dtype);
        return -(logps * m).sum() / m.sum();
    }

    /// <summary>The <see cref="Target"/> completions of <paramref name="samples"/>, right padded: ids and mask [N, C] on the policy's device.</summary>
    public static (Tensor Ids, Tensor Mask) EncodeTargets(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples)
    {
        var targets = samples.Select(s => policy.EncodeCompletion(Target(s))).ToList();
        var c = targets.Max(t => t.Length);
        var ids = new long[samples.Count * c];
        var mask = new long[samples.Count * c];
        for (int b = 0; b < samples.Count; b++)
            for (int j = 0; j < c; j++)
            {
                var real = j < targets[b].Length;
                ids[b * c + j] = real ? targets[b][j] : policy.PadTokenId;
                mask[b * c + j] = real ? 1 : 0;
            }
        return (tensor(ids, [samples.Count, c]).to(policy.Device), tensor(mask, [samples.Count, c]).to(policy.Device));
    }

    /// <summary>Steps until <see cref="TotalSteps"/> (or <paramref name="steps"/> more), yielding each result.</summary>
    public IEnumerable<SftStepResult> Train(int? steps = null, CancellationToken cancellation = default)
    {
        var end = steps is { } n ? Math.Min(TotalSteps, Optimizer.StepCount + n) : TotalSteps;
        while (Optimizer.StepCount < end && !cancellation.IsCancellationRequested)
            yield return Step();
    }

    public void Dispose() => Optimizer.Dispose();
}
