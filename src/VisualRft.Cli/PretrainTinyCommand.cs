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
        var steps = new Option<int>("--steps") { Description = "SFT steps", DefaultValueFactory = _ => defaults.Steps };
        var output = new Option<DirectoryInfo>("--out") { Description = "output folder (Hugging Face layout)", Required = true };
        var cmd = new Command("pretrain-tiny", "Pre-train the tiny Qwen2-VL base model on the synthetic base tasks") { steps, output };
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            TorchRuntime.EnsureLoaded();
            o.WriteLine(TorchRuntime.Describe());
            var options = defaults with { Steps = parse.GetValue(steps) };
            var start = DateTime.UtcNow;
            using var policy = TinyQwen2Vl.Pretrain(options, s =>
            {
                if (s.Step % 50 == 0 || s.Step == options.Steps)
                    o.WriteLine($"step {s.Step}/{options.Steps}: loss {s.Loss:F4}, lr {s.LearningRate:E2}, {s.Milliseconds:F0} ms, {(DateTime.UtcNow - start).TotalSeconds:F0} s");
            });
            var folder = parse.GetValue(output)!.FullName;
            policy.SavePretrained(folder);
            o.WriteLine($"{policy.Model.parameters().Sum(p => p.numel()):N0} parameters, vocabulary {policy.Processor.Tokenizer.VocabSize}; written to {folder}");
            return 0;
        });
        return cmd;
    }
}
