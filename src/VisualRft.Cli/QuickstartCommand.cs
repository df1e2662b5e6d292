using System.CommandLine;
using VisualRft.Data;
using VisualRft.Experiments;
using VisualRft.IO;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Torch;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft quickstart</c>: the main job. The shipped tiny base model learns novel categories of the synthetic few-shot
/// detection task with Visual-RFT, and with SFT on the same shots; prints and writes the held-out numbers before and after
/// (<c>result.json</c>, <c>summary.md</c>).
/// </summary>
public static class QuickstartCommand
{
    /// <summary>A bound far above any CPU run (120 steps take minutes), so that a typo does not start a week-long job.</summary>
    public const int MaxSteps = 1_000_000;

    /// <summary>Seeds a run may ask for (the validation split's seed offset stays clear of every training seed).</summary>
    public const int MaxSeed = 99_999, MaxSeeds = 100;

    /// <summary>The --seed / --seeds pair every comparison command takes.</summary>
    internal static (Option<int> Seed, Option<int> Seeds) SeedOptions() => (
        new Option<int>("--seed") { Description = "first seed: it draws the training images, GRPO's prompt order and sampler, SFT's batch order", DefaultValueFactory = _ => 1 },
        new Option<int>("--seeds") { Description = "number of seeds (seed, seed + 1, …); results are means ± sd over them", DefaultValueFactory = _ => 1 });

    public static Command Create()
    {
        var defaults = new FewShotDetectionOptions();
        var recipe = defaults.Recipe;
        var steps = new Option<int>("--steps") { Description = "Visual-RFT steps", DefaultValueFactory = _ => recipe.RftSteps };
        var sftSteps = new Option<int>("--sft-steps") { Description = "SFT steps", DefaultValueFactory = _ => recipe.SftSteps };
        var shots = new Option<int>("--shots") { Description = "training images per novel category (1, 2, 4, 8, 16)", DefaultValueFactory = _ => defaults.Shots };
        var test = new Option<int>("--test") { Description = "held-out images per novel category", DefaultValueFactory = _ => defaults.TestPerCategory };
        var split = new Option<string>("--split") { Description = "held-out split to score: test, or validation (for choosing settings)", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "validation");
        var preset = new Option<string>("--preset") { Description = "reward preset: visual-rft | strict", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong(EnumNames.All<RewardPreset>());
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for result.json and summary.md", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("runs", "quickstart")) };
        var lr = new Option<double>("--lr") { Description = "Visual-RFT learning rate", DefaultValueFactory = _ => recipe.Grpo.LearningRate };
        var sftLr = new Option<double>("--sft-lr") { Description = "SFT learning rate", DefaultValueFactory = _ => recipe.Sft.LearningRate };
        var beta = new Option<double>("--beta") { Description = "KL coefficient β of Visual-RFT", DefaultValueFactory = _ => recipe.Grpo.Beta };
        var prompts = new Option<int>("--prompts-per-step") { Description = "prompts per Visual-RFT step (each with G = 8 answers)", DefaultValueFactory = _ => recipe.Grpo.PromptsPerStep };
        var (seed, seeds) = SeedOptions();
        var model = new Option<DirectoryInfo?>("--model") { Description = "a Hugging Face model folder to start from instead of the built-in tiny model" };
        var cmd = new Command("quickstart", "Few-shot detection with Visual-RFT vs SFT on the built-in tiny model (CPU, a few minutes)")
            { steps, sftSteps, shots, test, split, preset, output, model, lr, sftLr, beta, prompts, seed, seeds };
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            // Every value is checked before the first minute of work: sizes against the memory the data set may take.
            var manifest = SyntheticDatasets.Manifest(defaults.Dataset);
            var testSize = OptionChecks.InRange(parse, test, 1, manifest.With(shots: defaults.Shots, testSize: 1).MaxSize(DatasetSplit.Test),
                $"held-out images of {manifest.NovelCategories.Count} categories must fit in {MemoryBudget.Format(MemoryBudget.PlanningBytes)}");
            var shotCount = OptionChecks.InRange(parse, shots, 1, manifest.With(shots: 1, testSize: testSize).MaxSize(DatasetSplit.Train),
                $"training images of {manifest.NovelCategories.Count} categories must fit in {MemoryBudget.Format(MemoryBudget.PlanningBytes)}");
            var stepCount = OptionChecks.InRange(parse, steps, 1, MaxSteps);
            var learningRate = OptionChecks.FinitePositive(parse, lr);
            var promptCount = OptionChecks.InRange(parse, prompts, 1, 64);
            var betaValue = parse.GetValue(beta);
            if (!(betaValue >= 0 && double.IsFinite(betaValue))) throw new OptionException(beta.Name, $"must be a finite number ≥ 0, got {betaValue}");
            var firstSeed = OptionChecks.InRange(parse, seed, 0, MaxSeed);
            var seedCount = OptionChecks.InRange(parse, seeds, 1, MaxSeeds);
            var outFolder = OptionChecks.OutputFolder(output.Name, parse.GetValue(output)!);
            var folder = parse.GetValue(model)?.FullName;
            if (folder is not null) VisionLanguagePolicy.Check(folder);
            TorchRuntime.EnsureLoaded();
            o.WriteLine(TorchRuntime.Describe());
            var options = defaults with
            {
                Shots = shotCount, TestPerCategory = testSize, FirstSeed = firstSeed, SeedCount = seedCount,
                HeldOut = parse.GetValue(split) == "validation" ? HeldOutSplit.Validation : HeldOutSplit.Test,
                Recipe = recipe with
                {
                    RftSteps = stepCount, SftSteps = OptionChecks.InRange(parse, sftSteps, 1, MaxSteps), Preset = EnumNames.Parse<RewardPreset>(parse.GetValue(preset)!, "preset"),
                    Grpo = recipe.Grpo with
                    {
                        LearningRate = learningRate, Beta = betaValue,
                        PromptsPerMicroBatch = promptCount, GradientAccumulation = 1,
                    },
                    Sft = recipe.Sft with { LearningRate = OptionChecks.FinitePositive(parse, sftLr) },
                },
            };
            var result = FewShotDetection.Run(options,
                () => folder is null ? TinyQwen2Vl.Pretrained() : VisionLanguagePolicy.FromPretrained(folder), line => o.WriteLine(line));
            AtomicFile.WriteAllText(Path.Combine(outFolder, "result.json"), result.ToJson());
            var summary = result.ToMarkdown();
            AtomicFile.WriteAllText(Path.Combine(outFolder, "summary.md"), summary);
            o.WriteLine();
            o.WriteLine(summary);
            o.WriteLine($"written: {Path.Combine(outFolder, "result.json")}, {Path.Combine(outFolder, "summary.md")}");
            return 0;
        });
        return cmd;
    }
}
