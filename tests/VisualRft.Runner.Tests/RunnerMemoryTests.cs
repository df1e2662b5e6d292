using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.CodeAnalysis;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Runner;

namespace VisualRft.Runner.Tests;

/// <summary>
/// What a long notebook costs per cell. Before each reference reached the script chain once, submission n held n copies of
/// the kernel's ~50 references: the heap grew by about 0.45 MB per cell between cells 150 and 300 (and more after). With the
/// stock language-service workspace (one project per cell, its dependency graph quadratic) 0.097 MB; with it kept to the
/// last cell 0.080 MB, the compiled submissions Roslyn keeps chained (bench runner: 75 MB per 1,000 cells at any count).
/// </summary>
public sealed class RunnerMemoryTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("vrft-run-memory-").FullName;

    public void Dispose()
    {
        Formatter.ResetToDefault();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Three_hundred_cells_grow_the_heap_by_a_bounded_amount_per_cell_and_still_see_host_types()
    {
        const int cells = 300, from = 150;
        var path = Path.Combine(_folder, "long.ipynb");
        File.WriteAllText(path, Notebook(cells));
        var heap = new Dictionary<int, double>();
        var run = await NotebookRunner.RunAsync(path, new CellCounter(done =>
        {
            if (done is from or cells) heap[done] = HeapMb();
        }));

        Assert.True(run.Succeeded, run.Summary());
        // the last cell reads the first cell's variable and a type of the hosted package: references still reach it
        Assert.Contains($">{0 + "TorchRuntime".Length}<", ReturnValue(run, cells));
        var perCell = (heap[cells] - heap[from]) / (cells - from);
        Assert.True(perCell < 0.12, $"the heap grew {perCell:F3} MB per cell between cells {from} and {cells}");
    }

    [Fact]
    public async Task The_language_service_workspace_keeps_the_last_cell_and_later_cells_still_see_every_earlier_one()
    {
        const int cells = 40;
        using var kernel = NotebookKernel.Create();
        for (int i = 0; i < cells; i++)
            Assert.DoesNotContain((await kernel.SendAsync(new SubmitCode($"var y{i} = {i};"))).Events, e => e is CommandFailed);

        // the stock kernel would hold cells + 1 projects here, each referencing the one before
        var csharp = kernel.ChildKernels.OfType<CSharpKernel>().Single();
        var workspace = (Workspace)typeof(CSharpKernel).GetField("_workspace", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(csharp)!;
        Assert.InRange(workspace.CurrentSolution.ProjectIds.Count, 1, 2);

        // completions still answer, from the last cell's declarations (older ones left the workspace): it stays consistent
        var code = $"y{cells - 1}.";
        var completions = await kernel.SendAsync(new RequestCompletions(code, new LinePosition(0, code.Length)));
        Assert.Contains(completions.Events.OfType<CompletionsProduced>().Single().Completions, c => c.DisplayText == "CompareTo");
        // execution binds against the script chain, which keeps every cell
        var sum = await kernel.SendAsync(new SubmitCode($"y0 + y{cells - 1}"));
        Assert.Equal(cells - 1, sum.Events.OfType<ReturnValueProduced>().Single().Value);
    }

    static string? ReturnValue(NotebookRun run, int cell) =>
        run.Document.Elements[cell - 1].Outputs.OfType<Microsoft.DotNet.Interactive.Documents.ReturnValueElement>()
            .Select(v => v.Data.TryGetValue("text/html", out var t) ? t?.ToString() : null).SingleOrDefault();

    static double HeapMb()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(false) / 1048576.0;
    }

    static string Notebook(int cells)
    {
        var list = new JsonArray();
        for (int i = 0; i < cells; i++)
            list.Add(new JsonObject
            {
                ["cell_type"] = "code", ["metadata"] = new JsonObject(), ["outputs"] = new JsonArray(),
                ["source"] = i < cells - 1 ? $"var x{i} = {i};\nConsole.WriteLine(x{i});\nx{i} + 1" : "x0 + typeof(VisualRft.Torch.TorchRuntime).Name.Length",
            });
        return new JsonObject { ["cells"] = list, ["nbformat"] = 4, ["nbformat_minor"] = 5, ["metadata"] = new JsonObject() }.ToJsonString();
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
