using System.Diagnostics;
using System.Text.Json;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;

namespace VisualRft.Runner;

/// <summary>
/// Executes a .ipynb or .dib cell by cell in an in-process <see cref="NotebookKernel"/> (the Documents API; platform-notes.md
/// §9a), stops at the first failing cell as Jupyter's nbconvert does, and records every output in the document.
/// </summary>
public static class NotebookRunner
{
    /// <summary>The kernels a notebook may name. Everything that is not markdown runs in C#.</summary>
    public static KernelInfoCollection KernelInfos { get; } = new()
    {
        new Microsoft.DotNet.Interactive.Documents.KernelInfo("csharp", "C#", aliases: ["c#", "C#", "cs"]),
        new Microsoft.DotNet.Interactive.Documents.KernelInfo("markdown", "Markdown", aliases: ["md"]),
    };

    static NotebookRunner() => KernelInfos.DefaultKernelName = "csharp";

    /// <summary>Largest notebook file read: notebooks that embed images and charts reach tens of megabytes.</summary>
    public const int MaxNotebookBytes = 256 << 20;

    /// <summary>
    /// The notebook at <paramref name="path"/>: a regular .ipynb or .dib file of at most <see cref="MaxNotebookBytes"/>
    /// (a directory, <c>/dev/zero</c> or another extension is refused before anything is read). A .ipynb must be the
    /// nbformat JSON object with a <c>cells</c> list whose every cell has a <c>cell_type</c> and a <c>source</c> that is
    /// text or a list of lines: the Documents parser reads anything else as an empty notebook, which would "run" without
    /// a word. Every problem is an <see cref="InvalidDataException"/> naming the file (and the cell).
    /// </summary>
    public static InteractiveDocument Load(string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".ipynb" or ".dib") && !Directory.Exists(path))
            throw new InvalidDataException($"{path}: not a notebook (.ipynb or .dib), the extension is '{extension}'");
        var text = VisualRft.IO.BoundedFile.ReadAllText(path, MaxNotebookBytes, "notebook");
        if (extension == ".dib") return CodeSubmission.Parse(text, KernelInfos);
        CheckIpynb(path, text);
        try { return Notebook.Parse(text, KernelInfos); }
        catch (Exception e) when (e is JsonException or InvalidCastException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a notebook the Documents parser can read ({e.Message})", e);
        }
    }

    static void CheckIpynb(string path, string text)
    {
        JsonDocument json;
        try { json = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a notebook, not valid JSON ({e.Message})", e); }
        using (json)
        {
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: not a notebook, the JSON is {Kind(root)} where nbformat has an object with 'cells'");
            if (!root.TryGetProperty("cells", out var cells))
                throw new InvalidDataException($"{path}: not a notebook, it has no key 'cells'");
            if (cells.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: key 'cells' must be a list of cells, got {Kind(cells)}");
            int i = 0;
            foreach (var cell in cells.EnumerateArray())
            {
                var where = $"{path}: cells[{i++}]";
                if (cell.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} must be an object, got {Kind(cell)}");
                if (!cell.TryGetProperty("cell_type", out var type) || type.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{where} has no 'cell_type' string");
                if (!cell.TryGetProperty("source", out var source))
                    throw new InvalidDataException($"{where} has no key 'source'");
                if (source.ValueKind != JsonValueKind.String
                    && (source.ValueKind != JsonValueKind.Array || source.EnumerateArray().Any(l => l.ValueKind != JsonValueKind.String)))
                    throw new InvalidDataException($"{where}: key 'source' must be text or a list of lines, got {Kind(source)}");
            }
        }
    }

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {VisualRft.IO.Excerpt.Of(e.GetRawText(), 40)}",
        JsonValueKind.True or JsonValueKind.False => $"{e.GetRawText()}",
        _ => "null",
    };

    /// <summary>
    /// Runs the notebook at <paramref name="path"/> with its folder as the working directory (as Jupyter does), writing one
    /// progress line per code cell to <paramref name="progress"/>. Cancelling <paramref name="cancel"/> cancels the running
    /// cell and skips the rest.
    /// </summary>
    public static Task<NotebookRun> RunAsync(string path, TextWriter progress, CancellationToken cancel = default) =>
        RunAsync(path, Load(path), progress, cancel);

    /// <summary><see cref="RunAsync(string, TextWriter, CancellationToken)"/> for a notebook <see cref="Load"/>ed from
    /// <paramref name="path"/> already.</summary>
    public static async Task<NotebookRun> RunAsync(string path, InteractiveDocument document, TextWriter progress, CancellationToken cancel = default)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        var cells = document.Elements.Select((element, i) => (element, number: i + 1))
            .Where(c => !IsMarkdown(c.element) && !string.IsNullOrWhiteSpace(c.element.Contents)).ToList();
        var runs = new List<CellRun>();
        var total = Stopwatch.StartNew();
        var workingDirectory = Environment.CurrentDirectory;
        Environment.CurrentDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        try
        {
            using var kernel = NotebookKernel.Create();
            var executionCount = 0;
            foreach (var (element, number) in cells)
            {
                var firstLine = FirstLine(element.Contents);
                if (runs.Any(r => r.Status is CellStatus.Failed or CellStatus.Cancelled))
                {
                    runs.Add(new CellRun(number, firstLine, CellStatus.NotRun, TimeSpan.Zero));
                    continue;
                }
                progress.Write($"[{runs.Count + 1}/{cells.Count}] cell {number} `{firstLine}` … ");
                var clock = Stopwatch.StartNew();
                element.Outputs.Clear();
                element.ExecutionOrder = ++executionCount;
                var submit = new SubmitCode(element.Contents, element.KernelName);
                KernelCommandResult? result = null;
                try
                {
                    result = await kernel.SendAsync(submit, cancel);
                }
                catch (OperationCanceledException)
                {
                    // cancelled before the kernel answered: the cell is reported as cancelled below
                }
                var error = result is null ? null : Record(result, submit, element);
                var status = cancel.IsCancellationRequested ? CellStatus.Cancelled : error is null ? CellStatus.Succeeded : CellStatus.Failed;
                if (status == CellStatus.Cancelled)
                {
                    error = "cancelled (Ctrl-C)";
                    element.Outputs.Add(new ErrorElement(error, "Cancelled"));
                }
                runs.Add(new CellRun(number, firstLine, status, clock.Elapsed, error));
                progress.WriteLine(status == CellStatus.Succeeded ? $"{clock.Elapsed.TotalSeconds:0.0} s" : $"{status.ToString().ToLowerInvariant()} after {clock.Elapsed.TotalSeconds:0.0} s");
            }
        }
        finally
        {
            Environment.CurrentDirectory = workingDirectory;
        }
        return new NotebookRun(name, document, runs, total.Elapsed);
    }

    /// <summary>Writes <c>NAME.ipynb</c> (the executed notebook) and <c>NAME.html</c> (the report) into <paramref name="folder"/>.</summary>
    public static (string Notebook, string Report) Write(NotebookRun run, string folder)
    {
        Directory.CreateDirectory(folder);
        var notebook = Path.Combine(folder, run.Name + ".ipynb");
        var report = Path.Combine(folder, run.Name + ".html");
        // ToJupyterJson expects the kernel list as the typed collection it makes itself (a parsed .ipynb holds a plain
        // dictionary there, which it fails to cast) and adds the C# kernel to it (a .dib's list has it already, which it
        // fails to add twice; Documents 1.0.0-beta.26120.1). Hand it the document's other kernels.
        var kernels = new KernelInfoCollection();
        kernels.AddRange((run.Document.GetKernelInfo() ?? KernelInfos).Where(k => k.Name != "csharp"));
        run.Document.Metadata["polyglot_notebook"] = kernels;
        File.WriteAllText(notebook, run.Document.ToJupyterJson("C#"));
        File.WriteAllText(report, HtmlReport.Render(run));
        return (notebook, report);
    }

    /// <summary>
    /// Turns a cell's events into document outputs: streams, displays (an update replaces the display it updates, so the
    /// notebook keeps a live dashboard's last state), the return value, errors. Returns the cell's error, or null.
    /// </summary>
    static string? Record(KernelCommandResult result, SubmitCode submit, InteractiveDocumentElement element)
    {
        var outputs = element.Outputs;
        var displays = new Dictionary<string, int>();
        string? error = null;
        foreach (var e in result.Events)
        {
            switch (e)
            {
                // streams and errors derive from DisplayEvent: match them first
                case StandardOutputValueProduced o: AppendText(outputs, PlainText(o), "stdout"); break;
                case StandardErrorValueProduced o: AppendText(outputs, PlainText(o), "stderr"); break;
                case ErrorProduced o: outputs.Add(new ErrorElement(o.Message, "Error")); break;
                case ReturnValueProduced o:
                    var value = new ReturnValueElement { ExecutionOrder = element.ExecutionOrder };
                    foreach (var f in o.FormattedValues) value.Data[f.MimeType] = f.Value;
                    outputs.Add(value);
                    break;
                // a restore whose every package the host answered: nothing was installed, nothing to show
                case DisplayEvent { Value: InstallPackagesMessage { InstallingPackages.Count: 0, InstalledPackages.Count: 0 } }: break;
                case DisplayedValueUpdated o when o.ValueId is not null && displays.TryGetValue(o.ValueId, out var at):
                    outputs[at] = Display(o);
                    break;
                case DisplayEvent o:
                    if (o.ValueId is not null) displays[o.ValueId] = outputs.Count;
                    outputs.Add(Display(o));
                    break;
                case CommandFailed failed when failed.Command == submit || failed.Command.Parent is null:
                    // an exception: its type, message and stack as Jupyter shows them; a compile error: the diagnostics
                    var exception = failed.Exception is CodeSubmissionCompilationErrorException ? null : failed.Exception;
                    error = exception is { } x ? $"{x.GetType().FullName}: {x.Message}" : failed.Message;
                    outputs.Add(exception is { } ex
                        ? new ErrorElement(ex.Message, ex.GetType().FullName!, ex.StackTrace?.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                        : new ErrorElement(failed.Message, "Error"));
                    break;
            }
        }
        return error;
    }

    static DisplayElement Display(DisplayEvent e) =>
        new(e.FormattedValues.GroupBy(f => f.MimeType).ToDictionary(g => g.Key, g => (object)g.Last().Value));

    static string PlainText(DisplayEvent e) =>
        e.FormattedValues.FirstOrDefault(f => f.MimeType == PlainTextFormatter.MimeType)?.Value ?? e.Value?.ToString() ?? "";

    static void AppendText(List<InteractiveDocumentOutputElement> outputs, string text, string stream)
    {
        if (outputs.Count > 0 && outputs[^1] is TextElement last && last.Name == stream)
            outputs[^1] = new TextElement(last.Text + text, stream);
        else
            outputs.Add(new TextElement(text, stream));
    }

    internal static bool IsMarkdown(InteractiveDocumentElement e) => e.KernelName is "markdown" or "md";

    static string FirstLine(string code)
    {
        var line = code.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";
        return line.Length <= 60 ? line : line[..57] + "...";
    }
}
