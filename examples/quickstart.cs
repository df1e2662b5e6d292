#:package VisualRft@0.1.0
#:property ManagePackageVersionsCentrally=false
#:property PublishAot=false
// Visual-RFT as a C# file-based app (`dotnet run examples/quickstart.cs`), the successor Microsoft names for the
// deprecated notebooks: the tiny base model, one GRPO rollout with its rewards and advantages drawn to an HTML page, then
// two training steps. CPU only, well under a minute after the first restore. The first #:property line keeps this file out
// of the repository's central package versions (Directory.Packages.props), which would otherwise apply to it here; the
// second turns off the native AOT that file-based apps default to, which TorchSharp's native loading cannot use and whose
// runtime packs (hundreds of MB) a restore would otherwise download.
using VisualRft.Data;
using VisualRft.Grpo;
using VisualRft.Rewards;
using VisualRft.TinyModel;
using VisualRft.Views;

var output = args.Length > 0 ? args[0] : Path.Combine("runs", "quickstart-app");
Directory.CreateDirectory(output);

var data = SyntheticDatasets.Load("shapes-detection", shots: 4);
using var policy = TinyQwen2Vl.Pretrained();
using var trainer = new GrpoTrainer(policy, data.Train, Rewards.Detection(),
    GrpoOptions.VisualRftPaper with { LearningRate = 1e-4, MaxCompletionLength = 64, GradientAccumulation = 1 }, totalSteps: 2);

var batch = trainer.Rollout(data.Train[0]).Score().Advantages();
Console.WriteLine($"rollout: {batch.Rollout.Completions.Count} completions, rewards {string.Join(" ", batch.Scored.Totals.Select(r => r.ToString("F2")))}");
var page = Path.Combine(output, "rollout.html");
File.WriteAllText(page, $"<!doctype html><meta charset=utf-8><title>rollout</title>{PlotlyJs.ScriptTag}{Render.Of(batch).Html}");
Console.WriteLine($"wrote {page}");

foreach (var step in trainer.Train(steps: 2))
    Console.WriteLine($"step {step.Step}: reward {step.Metrics.Reward.Mean:F3} ± {step.Metrics.Reward.Std:F3}, loss {step.Metrics.Loss:G3}, "
        + $"{step.Metrics.Time.TotalMs / 1000:F1} s");
