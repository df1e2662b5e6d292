using System.CommandLine;
using VisualRft.Runner;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft run NOTEBOOK [--out DIR]</c>: executes a .ipynb or .dib in-process, cell by cell, with the kernel extension loaded,
/// and writes the executed .ipynb and a self-contained HTML report. Exits 4 naming the failing cell; the cells after it are
/// not run. Ctrl-C cancels the running cell (a second Ctrl-C quits at once) and exits 130.
/// </summary>
public static class RunCommand
{
    public static Command Create()
    {
        var notebook = new Argument<FileInfo>("notebook") { Description = "a .ipynb or .dib notebook" };
        var output = new Option<DirectoryInfo>("--out")
            { Description = "folder for NAME.ipynb (executed) and NAME.html (report)", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("runs", "notebooks")) };
        var cmd = new Command("run", "Execute a notebook in-process and write the executed .ipynb and an HTML report") { notebook, output };
        cmd.SetAction(async (parse, _) =>
        {
            var input = parse.GetValue(notebook)!;
            // Everything that can be wrong with the notebook or --out is found here, before the kernel starts, not after
            // the last cell ran.
            var document = NotebookRunner.Load(input.FullName);
            var target = Path.Combine(parse.GetValue(output)!.FullName, Path.GetFileNameWithoutExtension(input.Name) + ".ipynb");
            if (Path.GetFullPath(target) == input.FullName)
                throw new OptionException("--out", $"{parse.GetValue(output)!.FullName} would overwrite the notebook itself; choose another folder");
            var folder = OptionChecks.OutputFolder("--out", parse.GetValue(output)!);
            // The kernel redirects Console.Out and Console.Error into the cells' outputs while a cell runs, so progress goes to
            // the process's own standard error stream.
            using var progress = new StreamWriter(Console.OpenStandardError()) { AutoFlush = true };
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                if (cancel.IsCancellationRequested) return;   // a second Ctrl-C ends the process at once
                e.Cancel = true;
                progress.WriteLine("\ncancelling the running cell (Ctrl-C again to quit at once)");
                cancel.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                var run = await NotebookRunner.RunAsync(input.FullName, document, progress, cancel.Token);
                var (ipynb, html) = NotebookRunner.Write(run, folder);
                progress.WriteLine(run.Summary());
                progress.WriteLine($"written: {ipynb}, {html}");
                return run.Stopped?.Status switch
                {
                    null => VrftCommandLine.ExitCodes.Ok,
                    CellStatus.Cancelled => VrftCommandLine.ExitCodes.Interrupted,
                    _ => VrftCommandLine.ExitCodes.NotebookFailed,
                };
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return cmd;
    }
}
