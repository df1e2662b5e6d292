using System.CommandLine;
using VisualRft.Data;
using VisualRft.IO;
using VisualRft.TinyModel;
using VisualRft.Torch;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft pretrain-tiny --out FOLDER</c>: makes the tiny base model from nothing (BPE vocabulary, random init, SFT on the
/// base categories) and writes a Hugging Face folder; the package ships the output of the default settings.
/// </summary>
public static class PretrainTinyCommand
{
    public static Command Create()
    {
        var defaults = new TinyPretrainOptions();
        var last = defaults.Stages[^1];
        var output = new Option<DirectoryInfo>("--out") { Description = "output folder (Hugging Face layout)", Required = true };
        var from = new Option<DirectoryInfo?>("--from") { Description = "continue training this tiny model folder with the last stage only, instead of starting from nothing" };
        var steps = new Option<int>("--steps") { Description = $"SFT steps of the last stage ({last.Name}); 0 with --from: only check the model", DefaultValueFactory = _ => last.Steps };
        var lr = new Option<double>("--lr") { Description = "peak learning rate of the last stage", DefaultValueFactory = _ => last.LearningRate };
        var dataSeed = new Option<int?>("--data-seed") { Description = "seed of the SFT images (default: each manifest's)" };
        var images = new Option<int>("--images-per-category") { Description = $"SFT images per category of the last stage's detection data ({last.Data[0].Dataset})", DefaultValueFactory = _ => last.Data[0].Images };
        var cmd = new Command("pretrain-tiny", "Pre-train the tiny Qwen2-VL base model on the synthetic base tasks") { steps, output, from, lr, dataSeed, images };
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            // Every value is checked before the work starts: the last stage's images against the memory a data set may take.
            var fromFolder = parse.GetValue(from)?.FullName;
            var manifest = SyntheticDatasets.Manifest(last.Data[0].Dataset);
            var lastStage = last with
            {
                Steps = OptionChecks.InRange(parse, steps, fromFolder is null ? 1 : 0, QuickstartCommand.MaxSteps),
                LearningRate = OptionChecks.FinitePositive(parse, lr),
                Data = [last.Data[0] with { Images = OptionChecks.InRange(parse, images, 1, manifest.With(shots: 1).MaxSize(DatasetSplit.Train),
                    $"the images of {manifest.BaseCategories.Count} categories must fit in {MemoryBudget.Format(MemoryBudget.PlanningBytes)}") }, .. last.Data.Skip(1)],
            };
            var seed = parse.GetValue(dataSeed);
            if (seed < 0) throw new OptionException(dataSeed.Name, $"must be a non-negative integer, got {seed}");
            var folder = OptionChecks.OutputFolder(output.Name, parse.GetValue(output)!);
            if (fromFolder is not null) VisualRft.Policy.VisionLanguagePolicy.Check(fromFolder);
            TorchRuntime.EnsureLoaded();
            o.WriteLine(TorchRuntime.Describe());
            var options = defaults with
            {
                DataSeed = seed,
                Stages = fromFolder is null ? [.. defaults.Stages.SkipLast(1), lastStage] : lastStage.Steps > 0 ? [lastStage] : [],
            };
            var start = DateTime.UtcNow;
            void Report(int stage, VisualRft.Training.SftStepResult s)
            {
                var st = options.Stages[stage];
                if (s.Step % 50 == 0 || s.Step == st.Steps)
                    o.WriteLine($"stage {stage + 1}/{options.Stages.Count} {st.Name} step {s.Step}/{st.Steps}: loss {s.Loss:F4}, lr {s.LearningRate:E2}, {s.Milliseconds:F0} ms, {(DateTime.UtcNow - start).TotalSeconds:F0} s");
            }
            // The loss cannot tell whether the boxes come from the image: check on unseen base images after every stage.
            var heldOut = TinyQwen2Vl.HeldOutBaseTasks();
            string Dependence(VisualRft.Policy.VisionLanguagePolicy model) =>
                $"held-out base images ({heldOut.Train.Count}): {VisualRft.Evaluation.ImageDependence.Measure(model, heldOut.Train)}";
            void Check(int stage, VisualRft.Policy.VisionLanguagePolicy model) => o.WriteLine($"stage {stage + 1} done; {Dependence(model)}");
            using var policy = fromFolder is null
                ? TinyQwen2Vl.Pretrain(options, Report, Check)
                : VisualRft.Policy.VisionLanguagePolicy.FromPretrained(fromFolder, TorchSharp.torch.CPU);
            if (fromFolder is not null) TinyQwen2Vl.Train(policy, options, Report, Check);
            policy.SavePretrained(folder);
            o.WriteLine($"{policy.Model.parameters().Sum(p => p.numel()):N0} parameters, vocabulary {policy.Processor.Tokenizer.VocabSize}; written to {folder}");
            if (options.Stages.Count == 0) o.WriteLine(Dependence(policy));
            return 0;
        });
        return cmd;
    }
}
