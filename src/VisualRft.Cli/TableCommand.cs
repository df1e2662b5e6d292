using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using VisualRft.Experiments;
using VisualRft.IO;
using VisualRft.Torch;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft table N [--steps S] [--out DIR]</c>: runs the tiny-scale analogue of paper table N (2–8) on CPU and prints it
/// beside the paper's rows; writes <c>table{N}.json</c> (the <see cref="TableComparison"/>) and <c>table{N}.md</c>. Tables 7
/// and 8 come from one training run, so either writes both.
/// </summary>
public static class TableCommand
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Converters = { new JsonStringEnumConverter() },
    };

    public static Command Create()
    {
        var defaults = new TinyTableOptions();
        var number = new Argument<int>("table") { Description = "paper table number, 2–8" };
        var steps = new Option<int>("--steps") { Description = "Visual-RFT steps", DefaultValueFactory = _ => defaults.Recipe.RftSteps };
        var sftSteps = new Option<int>("--sft-steps") { Description = "SFT steps", DefaultValueFactory = _ => defaults.Recipe.SftSteps };
        var (seed, seeds) = QuickstartCommand.SeedOptions();
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for table{N}.json and table{N}.md", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("runs", "tables")) };
        var cmd = new Command("table", "Run the tiny-scale analogue of a paper table (CPU, minutes) and compare it with the paper's rows") { number, steps, sftSteps, output, seed, seeds };
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            int n = parse.GetValue(number);
            if (n is < 2 or > 8) throw new OptionException("table", $"the paper's result tables are 2–8, not {n}");
            var stepCount = OptionChecks.InRange(parse, steps, 1, QuickstartCommand.MaxSteps);
            var sftStepCount = OptionChecks.InRange(parse, sftSteps, 1, QuickstartCommand.MaxSteps);
            var firstSeed = OptionChecks.InRange(parse, seed, 0, QuickstartCommand.MaxSeed);
            var seedCount = OptionChecks.InRange(parse, seeds, 1, QuickstartCommand.MaxSeeds);
            var folder = OptionChecks.OutputFolder(output.Name, parse.GetValue(output)!);
            TorchRuntime.EnsureLoaded();
            var options = defaults with
            {
                Recipe = defaults.Recipe with { RftSteps = stepCount, SftSteps = sftStepCount }, FirstSeed = firstSeed, SeedCount = seedCount,
            };
            IReadOnlyList<TableComparison> results = n is 7 or 8
                ? TinyTables.OpenVocabulary(options, log: line => o.WriteLine(line)) is var (t7, t8) ? [t7, t8] : []
                : [TinyTables.Run(n, options, log: line => o.WriteLine(line))];
            foreach (var result in results)
            {
                int k = result.Paper.Number;
                AtomicFile.WriteAllText(Path.Combine(folder, $"table{k}.json"), JsonSerializer.Serialize(result, Json));
                var md = result.ToMarkdown();
                AtomicFile.WriteAllText(Path.Combine(folder, $"table{k}.md"), md);
                o.WriteLine();
                o.WriteLine(md);
            }
            return 0;
        });
        return cmd;
    }
}
