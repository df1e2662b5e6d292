using System.CommandLine;
using VisualRft.Data;
using VisualRft.Interop;
using VisualRft.Rewards;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft export verl|easyr1|trl --dataset NAME|PATH --out DIR [--shots K] [--preset visual-rft|strict]</c>: a data set as
/// train.parquet and test.parquet in the layout of the engine's Qwen2-VL recipe, and the engine's config with the paper's
/// hyper-parameters (<see cref="EngineExport"/>). NAME is a synthetic data set or a manifest .json; PATH a downloaded
/// ViRFT data set (a parquet file, a folder of shards, or a save_to_disk folder) with <c>--task</c>, <c>--test PATH</c>
/// and <c>--on-bad-image fail|skip</c>.
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var cmd = new Command("export", "Write a data set and a GRPO config for verl, EasyR1 or TRL");
        foreach (var (name, engine) in new[] { ("verl", Engine.Verl), ("easyr1", Engine.EasyR1), ("trl", Engine.Trl) })
        {
            var dataset = new Option<string>("--dataset")
            {
                Description = $"synthetic data set ({string.Join(", ", SyntheticDatasets.Names)}), a manifest .json, or a downloaded data set (parquet file or folder, save_to_disk folder)",
                Required = true,
            };
            var output = new Option<DirectoryInfo>("--out") { Description = "folder for the parquet files and the config", Required = true };
            var shots = new Option<int?>("--shots") { Description = "training images per category of a synthetic data set (default: the manifest's)" };
            var preset = new Option<string>("--preset") { Description = "preset the shims score with (extra_info)", DefaultValueFactory = _ => EnumNames.Of(RewardPreset.VisualRft) };
            preset.AcceptOnlyFromAmong(EnumNames.All<RewardPreset>());
            var task = new Option<string>("--task") { Description = "task of a downloaded data set's rows", DefaultValueFactory = _ => "detection" };
            task.AcceptOnlyFromAmong(EnumNames.All<VisualTask>());
            var test = new Option<string?>("--test") { Description = "held-out rows of a downloaded data set (its 'test' split is used when it has one)" };
            var onBadImage = new Option<string>("--on-bad-image")
            {
                Description = "a downloaded row whose image is corrupt, truncated or missing: fail (stop, naming it) or skip (leave it out and count it)",
                DefaultValueFactory = _ => "fail",
            };
            onBadImage.AcceptOnlyFromAmong("fail", "skip");
            var sub = new Command(name, $"Export for {name}: parquet as its Qwen2-VL recipe reads it, and its config") { dataset, output, shots, preset, task, test, onBadImage };
            sub.SetAction(parse =>
            {
                var o = parse.InvocationConfiguration.Output;
                var datasetName = parse.GetValue(dataset)!;
                var synthetic = datasetName.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || SyntheticDatasets.Names.Contains(datasetName);
                if (!synthetic && !File.Exists(datasetName) && !Directory.Exists(datasetName))
                    throw new OptionException("--dataset", $"no synthetic data set '{datasetName}' (known: {string.Join(", ", SyntheticDatasets.Names)}) and no data set on disk there (a parquet file, a folder of shards, a save_to_disk folder)");
                var folder = OptionChecks.OutputFolder(output.Name, parse.GetValue(output)!);
                string label;
                IReadOnlyList<VisualSample> train, held;
                if (synthetic)
                {
                    var n = parse.GetValue(shots);
                    if (n is < 1 or > 4096) throw new OptionException("--shots", $"must be between 1 and 4,096, got {n}");
                    var data = SyntheticDatasets.Load(datasetName, shots: n);
                    (label, train, held) = (Path.GetFileNameWithoutExtension(datasetName), data.Train, data.Test);
                }
                else
                {
                    if (parse.GetValue(shots) is not null) throw new OptionException("--shots", "applies to synthetic data sets; a downloaded data set is exported as it is");
                    (label, train, held) = Downloaded(datasetName, parse.GetValue(test), EnumNames.Parse<VisualTask>(parse.GetValue(task)!, "task"),
                        parse.GetValue(onBadImage) == "skip" ? BadImagePolicy.Skip : BadImagePolicy.Fail, o);
                }
                var result = EngineExport.Write(engine, label, train, held, folder, EnumNames.Parse<RewardPreset>(parse.GetValue(preset)!, "preset"));
                o.WriteLine($"{name}: {result.TrainRows} train and {result.TestRows} test rows of {label} in {result.Folder}");
                foreach (var f in result.Files) o.WriteLine($"  {f}");
                return 0;
            });
            cmd.Subcommands.Add(sub);
        }
        return cmd;
    }

    /// <summary>A downloaded data set's train rows and its held-out rows: <paramref name="testPath"/>, else the set's own
    /// 'test' split, else none (the engines then validate on the training rows, which the output says).</summary>
    static (string Label, IReadOnlyList<VisualSample> Train, IReadOnlyList<VisualSample> Test) Downloaded(string path, string? testPath,
        VisualTask task, BadImagePolicy onBadImage, TextWriter o)
    {
        var label = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(path));
        LoadedSamples Load(string from, string hfSplit, string name, DatasetSplit split)
        {
            var loaded = PaperSamples.FromHfRows(HfDatasetReader.Read(from, hfSplit), task, name, onBadImage, split);
            o.WriteLine($"{name}: {loaded.Summary()}");
            return loaded;
        }
        var train = Load(path, "train", label, DatasetSplit.Train);
        if (testPath is not null) return (label, train.Samples, Load(testPath, "train", label + "-test", DatasetSplit.Test).Samples);
        if (HasSplit(path, "test")) return (label, train.Samples, Load(path, "test", label + "-test", DatasetSplit.Test).Samples);
        o.WriteLine($"{label}: no test split and no --test: test.parquet repeats the training rows, so the engine's validation score is a training score");
        return (label, train.Samples, train.Samples);
    }

    static bool HasSplit(string path, string split) =>
        File.Exists(Path.Combine(path, "dataset_dict.json")) && Directory.Exists(Path.Combine(path, split));
}
