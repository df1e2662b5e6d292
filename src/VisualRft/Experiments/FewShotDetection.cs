using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Training;

namespace VisualRft.Experiments;

/// <summary>Which held-out split a comparison is scored on: the test split, or the validation split that chooses settings.</summary>
public enum HeldOutSplit { Test, Validation }

/// <summary>
/// The quickstart: the paper's few-shot detection experiment (Table 3) at CPU scale. From one base model, Visual-RFT and
/// SFT each spend the same few-shot training set (k images per novel category); both are compared with the base model on
/// held-out images of those categories, for one or more seeds.
/// </summary>
public sealed record FewShotDetectionOptions
{
    public string Dataset { get; init; } = "shapes-detection";
    public int Shots { get; init; } = 4;
    /// <summary>Held-out images per novel category (8 categories: 256 images, enough to separate methods by a few AP points).</summary>
    public int TestPerCategory { get; init; } = 32;
    /// <summary>Test (the reported numbers) or Validation (images of the same categories from their own seed, for sweeps).</summary>
    public HeldOutSplit HeldOut { get; init; } = HeldOutSplit.Test;
    public int FirstSeed { get; init; } = 1;
    public int SeedCount { get; init; } = 1;
    public TinyRecipe Recipe { get; init; } = TinyRecipe.Default;

    public IReadOnlyList<int> Seeds => MethodComparison.Seeds(FirstSeed, SeedCount);
}

/// <summary>One seed of the quickstart: the fine-tuned models' held-out numbers and their training logs.</summary>
public sealed record FewShotSeed(int Seed, EvaluationSummary VisualRft, EvaluationSummary Sft, IReadOnlyList<StepMetrics> RftSteps,
    IReadOnlyList<SftStepResult> SftSteps, double Seconds);

public sealed record FewShotDetectionResult(
    FewShotDetectionOptions Options,
    int TrainSamples,
    int HeldOutSamples,
    EvaluationSummary Base,
    IReadOnlyList<FewShotSeed> Seeds,
    double Seconds)
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Per model ("base", "+SFT", "+Visual-RFT"), each metric's mean ± sd over the seeds (the base model is evaluated once).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, MeanSd>> Summary => new Dictionary<string, IReadOnlyDictionary<string, MeanSd>>
    {
        ["base"] = Base.Metrics.ToDictionary(kv => kv.Key, kv => MeanSd.Of([kv.Value])),
        ["+SFT"] = Over(s => s.Sft),
        ["+Visual-RFT"] = Over(s => s.VisualRft),
    };

    IReadOnlyDictionary<string, MeanSd> Over(Func<FewShotSeed, EvaluationSummary> pick) =>
        Base.Metrics.Keys.ToDictionary(k => k, k => MeanSd.Of([.. Seeds.Select(s => pick(s).Metrics[k])]));

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>A readable summary in the paper's layout: base, +SFT, +Visual-RFT (mean ± sd over seeds), Δ against the base model, and each seed.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var split = Options.HeldOut == HeldOutSplit.Test ? "held-out test" : "validation";
        sb.AppendLine($"# Few-shot detection: {Options.Dataset}, {Options.Shots}-shot ({TrainSamples} training, {HeldOutSamples} {split} samples, "
            + $"{Seeds.Count} seed{(Seeds.Count == 1 ? "" : "s")})");
        sb.AppendLine();
        var names = Base.Metrics.Keys.ToList();
        sb.AppendLine("| model | " + string.Join(" | ", names) + " |");
        sb.AppendLine("|---|" + string.Concat(names.Select(_ => "---|")));
        var summary = Summary;
        string Digits(string metric) => metric is "mAP" or "AP50" ? "F1" : metric is "P@0.5" or "R@0.5" ? "F2" : "F3";
        void Row(string label, string model) => sb.AppendLine($"| {label} | " + string.Join(" | ", names.Select(n => summary[model][n].Format(Digits(n)))) + " |");
        Row("tiny base", "base");
        Row($"+SFT ({Options.Recipe.SftSteps} steps)", "+SFT");
        Row($"+Visual-RFT ({Options.Recipe.RftSteps} steps)", "+Visual-RFT");
        var delta = names.ToDictionary(n => n, n => MeanSd.Of([.. Seeds.Select(s => s.VisualRft.Metrics[n] - Base.Metrics[n])]));
        var vsSft = names.ToDictionary(n => n, n => MeanSd.Of([.. Seeds.Select(s => s.VisualRft.Metrics[n] - s.Sft.Metrics[n])]));
        string Signed(MeanSd m, string f) => (m.Mean >= 0 ? "+" : "") + m.Format(f);
        sb.AppendLine("| Δ Visual-RFT − base | " + string.Join(" | ", names.Select(n => Signed(delta[n], Digits(n)))) + " |");
        sb.AppendLine("| Δ Visual-RFT − SFT | " + string.Join(" | ", names.Select(n => Signed(vsSft[n], Digits(n)))) + " |");
        sb.AppendLine();
        if (Seeds.Count > 1)
        {
            sb.AppendLine("| seed | +SFT mAP | +Visual-RFT mAP | +SFT reward | +Visual-RFT reward |");
            sb.AppendLine("|---|---|---|---|---|");
            foreach (var s in Seeds)
                sb.AppendLine($"| {s.Seed} | {s.Sft.MeanAp:F1} | {s.VisualRft.MeanAp:F1} | {s.Sft.Reward:F3} | {s.VisualRft.Reward:F3} |");
            sb.AppendLine();
        }
        sb.AppendLine("mAP: per-category COCO AP@[.5:.95] averaged over the novel categories (visual-rft-spec §6.2); rewards: held-out means under the "
            + $"{EnumNames.Of(Options.Recipe.Preset)} preset, greedy decoding; ± is the standard deviation over seeds "
            + "(a seed draws the training images, GRPO's prompt order and sampler, SFT's batch order; the held-out images are the same for every seed).");
        var rftMs = Seeds.SelectMany(s => s.RftSteps).Select(m => m.Time.TotalMs).DefaultIfEmpty().Average();
        sb.AppendLine($"Visual-RFT: {Options.Recipe.RftSteps} steps a seed, mean step {rftMs:F0} ms; SFT: {Options.Recipe.SftSteps} steps; total {Seconds:F0} s.");
        return sb.ToString();
    }
}

/// <summary>The held-out numbers of one model.</summary>
public sealed record EvaluationSummary(string Label, double MeanAp, double MeanAp50, double Precision50, double Recall50,
    IReadOnlyDictionary<string, double> Rewards, double Reward, double Seconds)
{
    public static EvaluationSummary Of(EvaluationReport r) => new(r.Label, r.Detection!.MeanAp, r.Detection.MeanAp50,
        r.Detection.Precision50, r.Detection.Recall50, r.Rewards.ToDictionary(kv => kv.Key, kv => kv.Value.Mean), r.Reward.Mean, r.Seconds);

    /// <summary>Every number in table order: mAP, AP50, P@0.5, R@0.5, each reward component, the reward.</summary>
    [JsonIgnore]
    public IReadOnlyDictionary<string, double> Metrics
    {
        get
        {
            var d = new Dictionary<string, double> { ["mAP"] = MeanAp, ["AP50"] = MeanAp50, ["P@0.5"] = Precision50, ["R@0.5"] = Recall50 };
            foreach (var (k, v) in Rewards) d[k] = v;
            d["reward"] = Reward;
            return d;
        }
    }
}

public static class FewShotDetection
{
    /// <summary>The seed a run's training images are drawn with for <paramref name="seed"/> (the test split keeps the manifest's).</summary>
    public static int TrainSeed(DatasetManifest m, int seed) => m.Seed + 1000 * seed;

    /// <summary>The seed of the validation split: images of the same categories, disjoint from the test images and every training set.</summary>
    public static int ValidationSeed(DatasetManifest m) => m.Seed + 500;

    /// <summary>The held-out split a run is scored on.</summary>
    public static IReadOnlyList<VisualSample> HeldOut(DatasetManifest m, HeldOutSplit split, int perCategory) =>
        SyntheticDataset.Generate(m.With(testSize: perCategory, seed: split == HeldOutSplit.Test ? m.Seed : ValidationSeed(m)), DatasetSplit.Test);

    /// <summary>The training split of one seed.</summary>
    public static IReadOnlyList<VisualSample> Train(DatasetManifest m, int shots, int seed) =>
        SyntheticDataset.Generate(m.With(shots: shots, seed: TrainSeed(m, seed)), DatasetSplit.Train);

    /// <summary>The size of <see cref="Train"/>'s split for <paramref name="shots"/>, without generating it.</summary>
    public static long TrainCount(DatasetManifest m, int shots)
    {
        var withShots = m.With(shots: shots);
        return withShots.ImageCount(withShots.Train);
    }

    /// <summary>Runs base evaluation, then Visual-RFT, SFT and their evaluations for each seed; <paramref name="log"/> gets progress lines.</summary>
    public static FewShotDetectionResult Run(FewShotDetectionOptions options, Func<VisionLanguagePolicy> loadBase, Action<string>? log = null,
        Action<int, StepMetrics>? onRftStep = null, CancellationToken cancellation = default)
    {
        log ??= _ => { };
        var m = SyntheticDatasets.Manifest(options.Dataset);
        if (m.Task != VisualTask.Detection) throw new ArgumentException($"dataset '{options.Dataset}' is not a detection task");
        var heldOut = HeldOut(m, options.HeldOut, options.TestPerCategory);
        var reward = TaskReward.Create(VisualTask.Detection, options.Recipe.Preset);
        var trainCount = TrainCount(m, options.Shots);
        log($"{trainCount} training samples ({options.Shots} per category), {heldOut.Count} {(options.HeldOut == HeldOutSplit.Test ? "held-out test" : "validation")} samples, "
            + $"seed{(options.SeedCount == 1 ? "" : "s")} {string.Join(", ", options.Seeds)}");

        EvaluationSummary Evaluate(VisionLanguagePolicy p, string label)
        {
            var r = PolicyEvaluator.Evaluate(p, heldOut, reward, label, options.Recipe.EvalMaxNewTokens);
            var s = EvaluationSummary.Of(r);
            log($"{label}: mAP {s.MeanAp:F1}, AP50 {s.MeanAp50:F1}, reward {s.Reward:F3} ({string.Join(", ", s.Rewards.Select(kv => $"{kv.Key} {kv.Value:F3}"))}) in {r.Seconds:F0} s");
            return s;
        }

        var runs = MethodComparison.Run(seed => Train(m, options.Shots, seed), VisualTask.Detection, options.Recipe, options.Seeds, Evaluate,
            loadBase, log, onRftStep, cancellation);
        return new FewShotDetectionResult(options, (int)trainCount, heldOut.Count, runs.Base,
            [.. runs.Seeds.Select(r => new FewShotSeed(r.Seed, r.Rft, r.Sft, r.RftSteps, r.SftSteps, r.Seconds))], runs.Seconds);
    }
}
