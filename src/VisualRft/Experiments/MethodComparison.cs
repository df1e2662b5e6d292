using System.Diagnostics;
using VisualRft.Data;
using VisualRft.Grpo;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Training;

namespace VisualRft.Experiments;

/// <summary>A mean over seeds with its sample standard deviation (0 for one seed).</summary>
public readonly record struct MeanSd(double Mean, double Sd, int N)
{
    public static MeanSd Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return new(double.NaN, double.NaN, 0);
        var mean = values.Average();
        var sd = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return new(mean, sd, values.Count);
    }

    public string Format(string number = "F1") => N < 2 ? Mean.ToString(number, System.Globalization.CultureInfo.InvariantCulture)
        : $"{Mean.ToString(number, System.Globalization.CultureInfo.InvariantCulture)} ± {Sd.ToString(number, System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>One seed of a comparison: the two fine-tuned models' numbers and their training logs.</summary>
public sealed record SeedRun<T>(int Seed, T Sft, T Rft, IReadOnlyList<StepMetrics> RftSteps, IReadOnlyList<SftStepResult> SftSteps, double Seconds);

/// <summary>The base model's numbers (once: its greedy answers to the fixed held-out split do not depend on the seed) and each seed's.</summary>
public sealed record MethodRuns<T>(T Base, IReadOnlyList<SeedRun<T>> Seeds, double Seconds)
{
    public double RftStepMs => Seeds.SelectMany(s => s.RftSteps).Select(m => m.Time.TotalMs).DefaultIfEmpty().Average();
    public double SftStepMs => Seeds.SelectMany(s => s.SftSteps).Select(s => s.Milliseconds).DefaultIfEmpty().Average();
}

/// <summary>
/// The one experiment loop of the quickstart and the tiny tables: the base model evaluated as it is; then, for each seed,
/// Visual-RFT from the base model on that seed's training set and evaluated, and SFT from a fresh base model on the same
/// set and evaluated. A seed fixes the training images (the trainSet function of Run), GRPO's prompt order and sampler and
/// SFT's batch order; the held-out split stays the same, so every seed is scored on the same images.
/// </summary>
public static class MethodComparison
{
    /// <summary>Seeds first, first + 1, …, first + count − 1.</summary>
    public static IReadOnlyList<int> Seeds(int first, int count) => [.. Enumerable.Range(first, count)];

    public static MethodRuns<T> Run<T>(Func<int, IReadOnlyList<VisualSample>> trainSet, VisualTask task, TinyRecipe recipe, IReadOnlyList<int> seeds,
        Func<VisionLanguagePolicy, string, T> evaluate, Func<VisionLanguagePolicy>? loadBase = null, Action<string>? log = null,
        Action<int, StepMetrics>? onRftStep = null, CancellationToken cancellation = default)
    {
        if (seeds.Count == 0) throw new ArgumentException("at least one seed is needed", nameof(seeds));
        var clock = Stopwatch.StartNew();
        loadBase ??= () => TinyQwen2Vl.Pretrained();
        log ??= _ => { };
        var reward = TaskReward.Create(task, recipe.Preset);
        T baseline;
        using (var policy = loadBase()) baseline = evaluate(policy, "base");
        log($"base evaluated ({clock.Elapsed.TotalSeconds:F0} s)");
        var runs = new List<SeedRun<T>>();
        foreach (var seed in seeds)
        {
            cancellation.ThrowIfCancellationRequested();
            var seedClock = Stopwatch.StartNew();
            var r = recipe.WithSeed(seed);
            var train = trainSet(seed);
            var tag = seeds.Count > 1 ? $"seed {seed}: " : "";
            var rftSteps = new List<StepMetrics>();
            var sftSteps = new List<SftStepResult>();
            T rft, sft;
            using (var policy = loadBase())
            {
                using var trainer = new GrpoTrainer(policy, train, reward, r.Grpo, r.RftSteps);
                foreach (var m in trainer.Train(cancellation: cancellation).Select(e => e.Metrics))
                {
                    rftSteps.Add(m);
                    onRftStep?.Invoke(seed, m);
                    if (m.Step % 20 == 0 || m.Step == r.RftSteps)
                        log($"{tag}visual-rft step {m.Step}/{r.RftSteps}: reward {m.Reward.Mean:F3} ± {m.Reward.Std:F3}, kl {m.Kl ?? 0:F4}, "
                            + $"zero-std {m.FractionZeroStdGroups:P0}, len {m.CompletionLength:F0}, {m.Time.TotalMs:F0} ms{(m.Skipped ? " SKIPPED: " + m.SkipReason : "")}");
                }
                rft = evaluate(policy, $"{tag}visual-rft");
            }
            using (var policy = loadBase())
            {
                using var trainer = new SftTrainer(policy, train, r.Sft, r.SftSteps);
                foreach (var s in trainer.Train(cancellation: cancellation))
                {
                    sftSteps.Add(s);
                    if (s.Step % 20 == 0 || s.Step == r.SftSteps) log($"{tag}sft step {s.Step}/{r.SftSteps}: loss {s.Loss:F4}");
                }
                sft = evaluate(policy, $"{tag}sft");
            }
            runs.Add(new SeedRun<T>(seed, sft, rft, rftSteps, sftSteps, seedClock.Elapsed.TotalSeconds));
            log($"{tag}done in {seedClock.Elapsed.TotalSeconds:F0} s");
        }
        return new MethodRuns<T>(baseline, runs, clock.Elapsed.TotalSeconds);
    }
}
