using System.Diagnostics;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Grpo;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Evaluation;

/// <summary>One held-out sample: the model's answer and its reward.</summary>
public sealed record EvaluatedSample(VisualSample Sample, string Completion, RewardBreakdown Reward);

/// <summary>
/// A policy's held-out results: mean reward per component and the task's quality measure — detection AP in the paper's
/// protocol (per-category COCO AP@[.5:.95], mean over categories, spec §6.2), classification accuracy (the paper's
/// substring rule, §6.1, with <see cref="StrictAccuracy"/> beside it) or grounding mIoU (§6.4).
/// </summary>
public sealed record EvaluationReport(
    string Label,
    IReadOnlyList<EvaluatedSample> Samples,
    IReadOnlyDictionary<string, RewardStat> Rewards,
    RewardStat Reward,
    DetectionMetrics? Detection,
    double? Accuracy,
    double? MeanIoU,
    double Seconds)
{
    /// <summary>Classification accuracy under the strict rule (<see cref="ClassMatchRule.Exact"/>), reported beside the paper's.</summary>
    public double? StrictAccuracy { get; init; }
}

/// <summary>Answers held-out prompts greedily, as the paper's evaluation scripts do (the model's top-k 1, spec §2.2), and scores them.</summary>
public static class PolicyEvaluator
{
    public static EvaluationReport Evaluate(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples, TaskReward reward,
        string label = "", int maxNewTokens = 256, int batchSize = 8, IProgress<int>? progress = null)
    {
        if (samples.Count == 0) throw new ArgumentException("no samples to evaluate", nameof(samples));
        var clock = Stopwatch.StartNew();
        var sampling = new SamplingOptions(MaxNewTokens: maxNewTokens, Greedy: true, StopTokenIds: policy.StopTokenIds, PadTokenId: policy.PadTokenId);
        var completions = Answer(policy, samples, sampling, 1, null, batchSize, progress).Completions;
        var scored = samples.Select((s, i) => new EvaluatedSample(s, completions[i], reward.Score(completions[i], s.Solution))).ToList();
        var task = samples[0].Task;
        var answers = task == VisualTask.Classification
            ? scored.Select(e => (string?)Answers.ParseClassification(e.Completion, RewardPreset.VisualRft).AnswerText).ToList() : null;
        var labels = scored.Select(e => e.Sample.Category).ToList();
        return new EvaluationReport(label, scored, RewardStat.OfComponents(RewardBreakdown.ByComponent([.. scored.Select(e => e.Reward)])), RewardStat.Of(scored.Select(e => e.Reward.Total).ToArray()),
            task == VisualTask.Detection ? DetectionQuality(scored) : null,
            answers is null ? null : ClassificationMetrics.Accuracy(answers, labels),
            task == VisualTask.Grounding ? GroundingMetrics.MeanIoU(
                scored.Select(e => Answers.ParseGrounding(e.Completion, RewardPreset.VisualRft).Box).ToList(),
                scored.Select(e => e.Sample.Boxes1000[0].ToBox()).ToList()) : null,
            clock.Elapsed.TotalSeconds)
        {
            StrictAccuracy = answers is null ? null : ClassificationMetrics.Accuracy(answers, labels, ClassMatchRule.Exact),
        };
    }

    /// <summary>
    /// <paramref name="numSamples"/> answers to each sample (row i·n + j), <paramref name="batchSize"/> prompts at a time, and
    /// each prompt's image frames (original and processor-resized sizes: what a box in the model's answer frame refers to).
    /// Sampling draws from one generator seeded with <paramref name="seed"/> (greedy decoding needs none).
    /// </summary>
    public static (IReadOnlyList<string> Completions, IReadOnlyList<ImageFrames> Frames) Answer(VisionLanguagePolicy policy,
        IReadOnlyList<VisualSample> samples, SamplingOptions sampling, int numSamples = 1, long? seed = null, int batchSize = 8, IProgress<int>? progress = null)
    {
        var completions = new List<string>(samples.Count * numSamples);
        var frames = new List<ImageFrames>(samples.Count);
        var patch = policy.Processor.ImageProcessor.PatchSize;
        using var generator = seed is { } sd ? new Generator((ulong)sd, policy.Device) : null;
        for (int start = 0; start < samples.Count; start += batchSize)
        {
            var chunk = samples.Skip(start).Take(batchSize).ToList();
            using var finalizers = FinalizerGate.Hold();
            using var scope = NewDisposeScope();
            var batch = policy.Encode(chunk);
            var device = policy.Device;
            ImageInputs images;
            using (no_grad()) images = policy.EncodeImages(batch);
            using var generated = policy.Model.Generate(batch.InputIdsTensor().to(device), batch.AttentionMaskTensor().to(device), images, sampling,
                numSamples, generator);
            completions.AddRange(policy.Decode(generated.CompletionIds, generated.CompletionMask));
            frames.AddRange(chunk.Select((s, b) => new ImageFrames(new ImageSize(s.Width, s.Height),
                new ImageSize(batch.Images!.GridThw[b].W * patch, batch.Images.GridThw[b].H * patch))));
            progress?.Report(completions.Count);
        }
        return (completions, frames);
    }

    /// <summary>
    /// Every parsed box becomes a detection scored by its confidence, in the 0–1000 frame (spec §6.2: the official
    /// extract_bbox, duplicates removed; a box with a non-finite confidence cannot be ranked and is dropped).
    /// </summary>
    static DetectionMetrics DetectionQuality(IReadOnlyList<EvaluatedSample> scored)
    {
        var truths = scored.SelectMany(e => e.Sample.Boxes1000.Select(b => new GroundTruthObject(e.Sample.Id, e.Sample.Category, b.ToBox())));
        var predictions = new List<DetectionPrediction>();
        foreach (var e in scored)
        {
            var answer = Answers.ParseDetection(e.Completion, RewardPreset.VisualRft);
            foreach (var box in answer.Boxes)
                if (double.IsFinite(box.Confidence) && box.Position.IsFinite)
                    predictions.Add(new DetectionPrediction(e.Sample.Id, e.Sample.Category,
                        box.Position, box.Confidence));
        }
        return CocoDetectionEvaluator.Evaluate(truths, predictions, scored.Select(e => e.Sample.Category).Distinct().Order(StringComparer.Ordinal));
    }
}
