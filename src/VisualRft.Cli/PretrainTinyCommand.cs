using System.CommandLine;
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
        var steps = new Option<int>("--steps") { Description = "SFT steps (0 with --from: only check the model)", DefaultValueFactory = _ => defaults.Steps };
        var output = new Option<DirectoryInfo>("--out") { Description = "output folder (Hugging Face layout)", Required = true };
        var from = new Option<DirectoryInfo?>("--from") { Description = "continue training this tiny model folder instead of starting from nothing" };
        var lr = new Option<double>("--lr") { Description = "peak learning rate", DefaultValueFactory = _ => defaults.Sft.LearningRate };
        var dataSeed = new Option<int?>("--data-seed") { Description = "seed of the SFT images (default: the shapes-ovd manifest's)" };
        var images = new Option<int>("--images-per-category") { Description = "SFT images per base category", DefaultValueFactory = _ => defaults.ImagesPerCategory };
        var cmd = new Command("pretrain-tiny", "Pre-train the tiny Qwen2-VL base model on the synthetic base tasks") { steps, output, from, lr, dataSeed, images };
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            TorchRuntime.EnsureLoaded();
            o.WriteLine(TorchRuntime.Describe());
            var options = defaults with
            {
                Steps = parse.GetValue(steps), DataSeed = parse.GetValue(dataSeed), ImagesPerCategory = parse.GetValue(images),
                Sft = defaults.Sft with { LearningRate = parse.GetValue(lr) },
            };
            var start = DateTime.UtcNow;
            void Report(VisualRft.Training.SftStepResult s)
            {
                if (s.Step % 50 == 0 || s.Step == options.Steps)
                    o.WriteLine($"step {s.Step}/{options.Steps}: loss {s.Loss:F4}, lr {s.LearningRate:E2}, {s.Milliseconds:F0} ms, {(DateTime.UtcNow - start).TotalSeconds:F0} s");
            }
            var fromFolder = parse.GetValue(from)?.FullName;
            using var policy = fromFolder is null ? TinyQwen2Vl.Pretrain(options, Report) : VisualRft.Policy.VisionLanguagePolicy.FromPretrained(fromFolder, TorchSharp.torch.CPU);
            if (fromFolder is not null && options.Steps > 0) TinyQwen2Vl.ContinuePretraining(policy, options, Report);
            var folder = parse.GetValue(output)!.FullName;
            policy.SavePretrained(folder);
            o.WriteLine($"{policy.Model.parameters().Sum(p => p.numel()):N0} parameters, vocabulary {policy.Processor.Tokenizer.VocabSize}; written to {folder}");
            // The loss cannot tell whether the boxes come from the image: check on unseen base images.
            using var heldOut = TinyQwen2Vl.HeldOutBaseTasks();
            o.WriteLine($"held-out base images ({heldOut.Train.Count}): {VisualRft.Evaluation.ImageDependence.Measure(policy, heldOut.Train)}");
            return 0;
        });
        return cmd;
    }
}
