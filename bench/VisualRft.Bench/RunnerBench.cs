using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using VisualRft.Runner;

namespace VisualRft.Bench;

/// <summary>
/// Memory of <c>vrft run</c> over a long notebook: a generated .ipynb of trivial code cells (each declares a variable,
/// prints a line and returns a value, so every kind of output is recorded) run by <see cref="NotebookRunner"/>; after every
/// <see cref="Every"/> cells the managed heap after a full collection, the resident set size, and their growth since the
/// previous sample as MB per 1,000 cells. What remains is flat in rate: about 75 MB of heap and 75-106 MB of RSS per 1,000
/// cells at 1,000 and at 3,000 cells, the chain of compiled submissions Roslyn scripting keeps (each submission's
/// compilation binds the 159 assemblies the chain references in a reference manager of its own — maps, identity, alias
/// and symbol arrays, about 60 % of the growth in dotnet-gcdump — and keeps its symbol tables, because later submissions
/// bind against it; the emitted assemblies, which the default load context never unloads, add to RSS). Before the
/// kernel's language-service workspace was kept to the last cell (one project per submission, its dependency graph caching
/// every project's transitive references) the rate rose with the count: +118 MB at 1,000 cells, +178 MB at 2,000.
/// </summary>
static class RunnerBench
{
    public const int Every = 250;

    public static int Run(int cells)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"vrft-runner-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var path = Path.Combine(folder, "long.ipynb");
            File.WriteAllText(path, Notebook(cells));
            Console.WriteLine($"== vrft run memory: {cells:N0} code cells (declare, print, return), sampled every {Every} cells");
            (int Cells, double HeapMb, double RssMb, double Seconds) last = (0, 0, 0, 0);
            var clock = Stopwatch.StartNew();
            var progress = new CellCounter(done =>
            {
                if (done % Every != 0) return;
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                GC.WaitForPendingFinalizers();
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                var now = (done, GC.GetTotalMemory(false) / 1048576.0, Environment.WorkingSet / 1048576.0, clock.Elapsed.TotalSeconds);
                double per = 1000.0 / (now.done - last.Cells);
                Console.WriteLine($"{now.done,7:N0} cells: heap {now.Item2,7:F1} MB, RSS {now.Item3,7:F1} MB, {now.Item4,5:F0} s" +
                                  (last.Cells == 0 ? "" : $"; since cell {last.Cells:N0}: heap +{(now.Item2 - last.HeapMb) * per:F0} MB, " +
                                                          $"RSS +{(now.Item3 - last.RssMb) * per:F0} MB, {(now.Item4 - last.Seconds) * per:F0} s per 1,000 cells"));
                last = now;
            });
            var run = NotebookRunner.RunAsync(path, progress).GetAwaiter().GetResult();
            Console.WriteLine(run.Summary());
            return run.Succeeded ? 0 : 1;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    static string Notebook(int cells)
    {
        var list = new JsonArray();
        for (int i = 0; i < cells; i++)
            list.Add(new JsonObject
            {
                ["cell_type"] = "code", ["execution_count"] = null, ["metadata"] = new JsonObject(), ["outputs"] = new JsonArray(),
                ["source"] = $"var x{i} = {i};\nConsole.WriteLine(x{i});\nx{i} + 1",
            });
        return new JsonObject
        {
            ["cells"] = list, ["nbformat"] = 4, ["nbformat_minor"] = 5,
            ["metadata"] = new JsonObject { ["kernelspec"] = new JsonObject { ["name"] = ".net-csharp", ["language"] = "C#", ["display_name"] = ".NET (C#)" } },
        }.ToJsonString();
    }

    /// <summary>The runner writes one progress line per code cell: count them.</summary>
    sealed class CellCounter(Action<int> onCell) : TextWriter
    {
        int done;
        public override Encoding Encoding => Encoding.UTF8;
        public override void Write(char value) { }
        public override void WriteLine(string? value) => onCell(++done);
    }
}
