using System.CommandLine;
using VisualRft.Data;
using VisualRft.Interop;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft export verl|easyr1|trl --dataset NAME --out DIR [--shots K] [--preset visual-rft|strict]</c>: a synthetic data
/// set as train.parquet and test.parquet in the layout of the engine's Qwen2-VL recipe, and the engine's config with the
/// paper's hyper-parameters (<see cref="EngineExport"/>).
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var cmd = new Command("export", "Write a data set and a GRPO config for verl, EasyR1 or TRL");
        foreach (var (name, engine) in new[] { ("verl", Engine.Verl), ("easyr1", Engine.EasyR1), ("trl", Engine.Trl) })
        {
            var dataset = new Option<string>("--dataset") { Description = $"synthetic data set ({string.Join(", ", SyntheticDatasets.Names)}) or a manifest .json", Required = true };
            var output = new Option<DirectoryInfo>("--out") { Description = "folder for the parquet files and the config", Required = true };
            var shots = new Option<int?>("--shots") { Description = "training images per category (default: the manifest's)" };
            var preset = new Option<string>("--preset") { Description = "preset the shims score with (extra_info)", DefaultValueFactory = _ => EngineExport.DefaultPreset };
            preset.AcceptOnlyFromAmong(ScoreCommand.Presets);
            var sub = new Command(name, $"Export for {name}: parquet as its Qwen2-VL recipe reads it, and its config") { dataset, output, shots, preset };
            sub.SetAction(parse =>
            {
                var n = parse.GetValue(shots);
                if (n is < 1 or > 4096) throw new OptionException("--shots", $"must be between 1 and 4,096, got {n}");
                var datasetName = parse.GetValue(dataset)!;
                if (!datasetName.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !SyntheticDatasets.Names.Contains(datasetName))
                    throw new OptionException("--dataset", $"no synthetic data set '{datasetName}' (known: {string.Join(", ", SyntheticDatasets.Names)})");
                var data = SyntheticDatasets.Load(datasetName, shots: n);
                var label = Path.GetFileNameWithoutExtension(datasetName);
                var result = EngineExport.Write(engine, label, data, parse.GetValue(output)!.FullName, parse.GetValue(preset)!);
                var o = parse.InvocationConfiguration.Output;
                o.WriteLine($"{name}: {result.TrainRows} train and {result.TestRows} test rows of {label} in {result.Folder}");
                foreach (var f in result.Files) o.WriteLine($"  {f}");
                return 0;
            });
            cmd.Subcommands.Add(sub);
        }
        return cmd;
    }
}
