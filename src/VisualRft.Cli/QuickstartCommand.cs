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

    public static Command Create()
    {
        var defaults = new FewShotDetectionOptions();
        var steps = new Option<int>("--steps") { Description = "Visual-RFT and SFT steps", DefaultValueFactory = _ => defaults.RftSteps };
        var shots = new Option<int>("--shots") { Description = "training images per novel category (1, 2, 4, 8, 16)", DefaultValueFactory = _ => defaults.Shots };
        var test = new Option<int>("--test") { Description = "held-out images per novel category", DefaultValueFactory = _ => defaults.TestPerCategory };
        var preset = new Option<string>("--preset") { Description = "reward preset: visual-rft | strict", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong("visual-rft", "strict");
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for result.json and summary.md", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("runs", "quickstart")) };
        var lr = new Option<double>("--lr") { Description = "Visual-RFT learning rate", DefaultValueFactory = _ => defaults.Grpo.LearningRate };
        var model = new Option<DirectoryInfo?>("--model") { Description = "a Hugging Face model folder to start from instead of the built-in tiny model" };
        var cmd = new Command("quickstart", "Few-shot detection with Visual-RFT vs SFT on the built-in tiny model (CPU, a few minutes)")
            { steps, shots, test, preset, output, model, lr };
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
            var outFolder = OptionChecks.OutputFolder(output.Name, parse.GetValue(output)!);
            var folder = parse.GetValue(model)?.FullName;
            if (folder is not null) VisionLanguagePolicy.Check(folder);
            TorchRuntime.EnsureLoaded();
            o.WriteLine(TorchRuntime.Describe());
            var options = defaults with
            {
                RftSteps = stepCount, SftSteps = stepCount, Shots = shotCount,
                TestPerCategory = testSize, Preset = ScoreCommand.ParsePreset(parse.GetValue(preset)!),
                Grpo = defaults.Grpo with { LearningRate = learningRate },
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
