using Microsoft.DotNet.Interactive.Documents;

namespace VisualRft.Runner;

public enum CellStatus { Succeeded, Failed, Cancelled, NotRun }

/// <summary>One code cell of a run. <see cref="Number"/> counts every cell of the notebook, markdown included, from 1, as an
/// editor shows them.</summary>
public sealed record CellRun(int Number, string FirstLine, CellStatus Status, TimeSpan Elapsed, string? Error = null);

/// <summary>A notebook after <see cref="NotebookRunner.RunAsync"/>: the document with its outputs, and how each code cell went.</summary>
public sealed record NotebookRun(string Name, InteractiveDocument Document, IReadOnlyList<CellRun> Cells, TimeSpan Elapsed)
{
    /// <summary>The cell that stopped the run (failed or cancelled), or null when every cell ran.</summary>
    public CellRun? Stopped => Cells.FirstOrDefault(c => c.Status is CellStatus.Failed or CellStatus.Cancelled);

    public bool Succeeded => Stopped is null;

    /// <summary>One line for a terminal: which cell stopped the run, its error, and what was skipped.</summary>
    public string Summary()
    {
        if (Stopped is not { } stop)
            return $"{Name}: {Cells.Count} code cells ran in {Elapsed.TotalSeconds:0.0} s";
        var skipped = Cells.Count(c => c.Status == CellStatus.NotRun);
        var what = stop.Status == CellStatus.Cancelled ? "was cancelled" : "failed";
        return $"{Name}: cell {stop.Number} ({stop.FirstLine}) {what}: {stop.Error}"
            + (skipped == 0 ? "" : $"\n{skipped} remaining code cell{(skipped == 1 ? " was" : "s were")} not run");
    }
}
