using System.CommandLine;
using System.Text.Json;
using VisualRft.Data;
using VisualRft.Interop;
using VisualRft.IO;
using VisualRft.Rewards;
using VisualRft.Views;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft rollouts PATH --format verl|trl|easyr1|wandb --dataset NAME [--shots K] [--split train|test] [--preset P] [--compare PATH2]
/// --out DIR</c>: imports a run's rollout log (<see cref="Rollouts.Import"/>), rejoins each completion with its image and
/// solution from the data set the run was exported from, re-scores it beside the engine's score and writes
/// <c>report.html</c> (opens offline) and <c>rescored.jsonl</c> (one line per completion: step, sample, engine score,
/// our components, agree) into DIR; prints how many disagree.
/// </summary>
public static class RolloutsCommand
{
    static readonly string[] Formats = ["verl", "trl", "easyr1", "wandb"];

    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "the log: verl's rollout_data_dir, TRL's completions folder, EasyR1's generations.log (or its folder), W&B table JSON" };
        var format = new Option<string>("--format") { Description = string.Join(" | ", Formats), Required = true };
        format.AcceptOnlyFromAmong(Formats);
        var dataset = new Option<string>("--dataset") { Description = "the data set the run trained on (as given to vrft export), to rejoin images and solutions", Required = true };
        var shots = new Option<int?>("--shots") { Description = "as given to vrft export" };
        var preset = new Option<string>("--preset") { Description = "our reward's preset", DefaultValueFactory = _ => "visual-rft" };
        preset.AcceptOnlyFromAmong(EnumNames.All<RewardPreset>());
        var split = new Option<string?>("--split") { Description = "train | test: where the completions' prompts come from (default: test for easyr1, whose log holds validation samples; else train)" };
        split.AcceptOnlyFromAmong("train", "test");
        var compare = new Option<string?>("--compare") { Description = "a second log of the same format, drawn beside the first" };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for report.html and rescored.jsonl", Required = true };
        var cmd = new Command("rollouts", "Import a run's rollouts from verl, TRL, EasyR1 or W&B, re-score them and draw them") { path, format, dataset, shots, split, preset, compare, output };
        cmd.SetAction(parse =>
        {
            var f = parse.GetValue(format) switch { "verl" => RolloutFormat.Verl, "trl" => RolloutFormat.Trl, "easyr1" => RolloutFormat.EasyR1, _ => RolloutFormat.Wandb };
            var name = parse.GetValue(dataset)!;
            if (!name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !SyntheticDatasets.Names.Contains(name))
                throw new OptionException("--dataset", $"no synthetic data set '{name}' (known: {string.Join(", ", SyntheticDatasets.Names)})");
            if (parse.GetValue(shots) is < 1 or > 4096) throw new OptionException("--shots", $"must be between 1 and 4,096, got {parse.GetValue(shots)}");
            var p = EnumNames.Parse<RewardPreset>(parse.GetValue(preset)!, "preset");
            var run = Rollouts.Import(parse.GetValue(path)!, f);   // read before generating the data set: a bad log fails fast
            var other = parse.GetValue(compare) is { } second ? Rollouts.Import(second, f) : null;
            var data = SyntheticDatasets.Load(name, shots: parse.GetValue(shots));
            // one split: prompts repeat across splits (a detection prompt names only the category), so both would make
            // prompt-only logs (TRL's) ambiguous
            var test = (parse.GetValue(split) ?? (f == RolloutFormat.EasyR1 ? "test" : "train")) == "test";
            var samples = test ? data.Test : data.Train;
            var rescored = Rollouts.Rescore(run, samples, p);
            var otherRescored = other is null ? null : Rollouts.Rescore(other, samples, p);
            var folder = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(folder);
            var view = ImportViews.Run(rescored, otherRescored);
            AtomicFile.WriteAllText(Path.Combine(folder, "report.html"), ImportViews.Page(view, $"{run.Name} ({run.Format})"));
            AtomicFile.WriteAllText(Path.Combine(folder, "rescored.jsonl"), string.Concat(rescored.Rollouts.Select(r => JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["step"] = r.Logged.Step,
                ["sample"] = r.Sample.Id,
                ["engine_score"] = r.Logged.EngineScore is { } s && double.IsFinite(s) ? s : null,
                ["ours"] = r.Ours.Components.ToDictionary(c => c.Name, c => double.IsFinite(c.Value) ? (object)c.Value : c.Value.ToString()),
                ["total"] = double.IsFinite(r.Ours.Total) ? r.Ours.Total : null,
                ["agrees"] = r.Agrees,
            }) + "\n")));
            var o = parse.InvocationConfiguration.Output;
            o.WriteLine($"{run.Format} {run.Name}: {run.Rollouts.Count} completions, {rescored.Rollouts.Count} rejoined with {name}, {rescored.Unmatched.Count} unmatched; "
                + $"engine and ours disagree on {rescored.Disagreements.Count} of {rescored.Rollouts.Count(r => r.Agrees is not null)}");
            foreach (var d in rescored.Disagreements.Take(10))
                o.WriteLine($"  step {d.Logged.Step} {d.Sample.Id}: engine {d.Logged.EngineScore:0.####}, ours {d.Ours.Total:0.####} ({d.Ours})");
            foreach (var (r, why) in rescored.Unmatched.Take(5)) o.WriteLine($"  unmatched (step {r.Step}): {why}");
            o.WriteLine($"written: {Path.Combine(folder, "report.html")}, {Path.Combine(folder, "rescored.jsonl")}");
            return 0;
        });
        return cmd;
    }
}
