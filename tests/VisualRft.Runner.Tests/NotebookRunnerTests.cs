using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Runner;
using VisualRft.Views;

namespace VisualRft.Runner.Tests;

/// <summary>The notebook runner in-process, and <c>vrft run</c> as a process for its exit code and messages.</summary>
public sealed class NotebookRunnerTests : IDisposable
{
    static string Notebook(string name) => Path.Combine(AppContext.BaseDirectory, "Notebooks", name);

    readonly string _out = Directory.CreateTempSubdirectory("vrft-run-").FullName;

    public void Dispose()
    {
        Formatter.ResetToDefault();   // the extension registers formatters process-wide
        Directory.Delete(_out, recursive: true);
    }

    [Fact]
    public async Task A_failing_dib_cell_stops_the_run_and_is_named()
    {
        var run = await NotebookRunner.RunAsync(Notebook("failing.dib"), TextWriter.Null);

        Assert.Equal([CellStatus.Succeeded, CellStatus.Failed, CellStatus.NotRun], run.Cells.Select(c => c.Status));
        var failed = run.Stopped!;
        Assert.Equal(3, failed.Number);   // the markdown cell counts
        Assert.Equal("var missing = NoSuchMethod();", failed.FirstLine);
        Assert.Contains("CS0103", failed.Error);
        Assert.Contains("cell 3 (var missing = NoSuchMethod();) failed", run.Summary());
        Assert.Contains("1 remaining code cell was not run", run.Summary());
        Assert.Empty(run.Document.Elements[3].Outputs);
    }

    [Fact]
    public async Task The_report_holds_every_output_and_plotly_js_once()
    {
        var run = await NotebookRunner.RunAsync(Notebook("outputs.ipynb"), TextWriter.Null);
        Assert.True(run.Succeeded, run.Summary());
        var (ipynb, report) = NotebookRunner.Write(run, _out);
        var html = File.ReadAllText(report);

        Assert.Contains("\">Outputs of every kind</h1>", html);                // markdown rendered
        Assert.Contains("<em>markdown</em>", html);
        Assert.Contains("to stdout", html);
        Assert.Contains("<pre class=\"stream stderr\">to stderr", html);
        Assert.Contains("<b>html</b>", html);                                 // HTML outputs as they are
        Assert.Contains("<rect class=\"probe\"", html);                       // SVG inline
        Assert.Contains("<pre>6</pre>", html);                                // the torch cell's return value (text/html of 6)
        // once in the head, although a cell displayed the script tag as well
        Assert.Equal(1, Count(html, PlotlyJs.Source));
        Assert.True(html.IndexOf(PlotlyJs.Source, StringComparison.Ordinal) < html.IndexOf("</head>", StringComparison.Ordinal));

        using var executed = JsonDocument.Parse(File.ReadAllText(ipynb));
        var cells = executed.RootElement.GetProperty("cells").EnumerateArray().ToList();
        Assert.Equal(".net-csharp", executed.RootElement.GetProperty("metadata").GetProperty("kernelspec").GetProperty("name").GetString());
        Assert.Equal(3, cells[3].GetProperty("execution_count").GetInt32());
        Assert.Contains(cells[3].GetProperty("outputs").EnumerateArray(), o => o.GetProperty("output_type").GetString() == "execute_result");
    }

    [Fact]
    public async Task The_host_answers_its_own_package_reference_without_a_download()
    {
        var run = await NotebookRunner.RunAsync(Notebook("outputs.ipynb"), TextWriter.Null);
        var first = run.Document.Elements[1].Outputs.OfType<DisplayElement>()
            .Select(d => d.Data.TryGetValue("text/plain", out var v) ? v.ToString() : null).ToList();

        Assert.Contains($"VisualRft.Interactive {NotebookKernel.HostedVersion} (the notebook asks for 9.9.9): the copy that runs this notebook (vrft run), not a download", first);
        // no restore ran: nothing reported installing a package
        Assert.DoesNotContain(run.Document.Elements.SelectMany(e => e.Outputs).OfType<DisplayElement>(),
            d => d.Data.Values.Any(v => v.ToString()!.Contains("Installed Packages")));
        Assert.True(run.Succeeded, run.Summary());
    }

    [Fact]
    public async Task Vrft_run_exits_4_naming_the_failing_cell_and_writes_what_ran()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "run", Notebook("failing.ipynb"), "--out", _out])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();

        Assert.True(p.ExitCode == VisualRft.Cli.VrftCommandLine.ExitCodes.NotebookFailed, stderr + await stdout);
        Assert.Contains("[1/4] cell 2 `#r \"nuget: VisualRft.Interactive, 9.9.9\"` … ", stderr);
        Assert.Contains("[3/4] cell 4 `throw new InvalidOperationException(\"boom in cell 4\");` … failed after", stderr);
        Assert.Contains("cell 4 (throw new InvalidOperationException(\"boom in cell 4\");) failed: System.InvalidOperationException: boom in cell 4", stderr);
        Assert.Contains("1 remaining code cell was not run", stderr);
        var html = File.ReadAllText(Path.Combine(_out, "failing.html"));
        Assert.Contains("cell 3 ran", html);
        Assert.Contains("Stopped at <a href=\"#cell-4\">cell 4</a>", html);
        Assert.DoesNotContain("cell 5 must not run\n", html);
    }

    [Fact]
    public async Task Cancelling_stops_the_running_cell_and_skips_the_rest()
    {
        using var cancel = new CancellationTokenSource();
        var notebook = Path.Combine(_out, "slow.dib");
        var started = Path.Combine(_out, "started");
        File.WriteAllText(notebook, "#!csharp\n\nConsole.WriteLine(1);\n\n#!csharp\n\n"
            + $"System.IO.File.WriteAllText(@\"{started}\", \"\");\nawait Task.Delay(60_000, Microsoft.DotNet.Interactive.KernelInvocationContext.Current.CancellationToken);\n\n"
            + "#!csharp\n\nConsole.WriteLine(3);\n");
        var running = NotebookRunner.RunAsync(notebook, TextWriter.Null, cancel.Token);
        while (!File.Exists(started)) await Task.Delay(50);   // the second cell is running
        cancel.Cancel();
        var run = await running.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([CellStatus.Succeeded, CellStatus.Cancelled, CellStatus.NotRun], run.Cells.Select(c => c.Status));
        Assert.Contains("cell 2 (System.IO.File.WriteAllText", run.Summary());
        Assert.True(run.Cells[1].Elapsed < TimeSpan.FromSeconds(30));
        var (ipynb, _) = NotebookRunner.Write(run, _out);   // a .dib is written as .ipynb too
        Assert.Contains("\"ename\": \"Cancelled\"", File.ReadAllText(ipynb));
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    [Fact]
    public async Task Ctrl_C_cancels_vrft_run_with_exit_code_130()
    {
        var started = Path.Combine(_out, "started");
        var notebook = Path.Combine(_out, "slow.dib");
        File.WriteAllText(notebook, "#!csharp\n\n"
            + $"System.IO.File.WriteAllText(@\"{started}\", \"\");\nawait Task.Delay(60_000, Microsoft.DotNet.Interactive.KernelInvocationContext.Current.CancellationToken);\n\n"
            + "#!csharp\n\nConsole.WriteLine(2);\n");
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "run", notebook, "--out", Path.Combine(_out, "run")])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        while (!File.Exists(started)) await Task.Delay(50);
        Assert.Equal(0, kill(p.Id, 2));   // SIGINT, as Ctrl-C sends it
        // a guard against a hang, not a timing: on 2 shared cores with the other test assemblies running, writing the
        // report after the cancel has taken over 30 s
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));

        Assert.True(p.ExitCode == VisualRft.Cli.VrftCommandLine.ExitCodes.Interrupted, await stderr);
        Assert.Contains("was cancelled: cancelled (Ctrl-C)", await stderr);
        Assert.True(File.Exists(Path.Combine(_out, "run", "slow.html")));
    }

    static int Count(string text, string part)
    {
        var n = 0;
        for (var at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
