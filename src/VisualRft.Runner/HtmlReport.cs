using System.Net;
using System.Text;
using Markdig;
using Microsoft.DotNet.Interactive.Documents;
using VisualRft.Views;

namespace VisualRft.Runner;

/// <summary>
/// One self-contained HTML page of a run: markdown cells rendered, code cells with their time and status, every output
/// (HTML as it is, SVG, images as data URIs, streams, errors). plotly.js is inlined once in the head, so charts draw with
/// the network off; copies that outputs carry (the extension emits it when it loads) are dropped.
/// </summary>
public static class HtmlReport
{
    static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    // The order a notebook front end prefers: the richest output it can show.
    static readonly string[] MimePreference =
        ["text/html", "image/svg+xml", "image/png", "image/jpeg", "image/gif", "text/markdown", "application/json", "text/plain"];

    public static string Render(NotebookRun run)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append($"<title>{Encode(run.Name)} — vrft run</title>\n<style>{Style}</style>\n")
            .Append(PlotlyJs.ScriptTag).Append("\n</head>\n<body>\n<main>\n");
        Header(html, run);
        var cells = run.Cells.ToDictionary(c => c.Number);
        for (var i = 0; i < run.Document.Elements.Count; i++)
        {
            var element = run.Document.Elements[i];
            if (NotebookRunner.IsMarkdown(element))
                html.Append("<section class=\"cell markdown\">\n").Append(Markdig.Markdown.ToHtml(element.Contents, Markdown)).Append("</section>\n");
            else if (!string.IsNullOrWhiteSpace(element.Contents))
                Code(html, element, cells.GetValueOrDefault(i + 1));
        }
        return html.Append("</main>\n</body>\n</html>\n").ToString();
    }

    static void Header(StringBuilder html, NotebookRun run)
    {
        var version = NotebookKernel.HostedVersion;
        html.Append($"<header>\n<h1>{Encode(run.Name)}</h1>\n<p class=\"about\">Run with <code>vrft run</code> (VisualRft.Interactive {Encode(version)}) on ")
            .Append($"{DateTime.Now:yyyy-MM-dd HH:mm}: {run.Cells.Count(c => c.Status != CellStatus.NotRun)} of {run.Cells.Count} code cells, ")
            .Append($"{run.Elapsed.TotalSeconds:0.0} s.</p>\n");
        if (run.Stopped is { } stop)
            html.Append($"<p class=\"stopped\">Stopped at <a href=\"#cell-{stop.Number}\">cell {stop.Number}</a>: ")
                .Append($"{Encode(stop.Error ?? "")}</p>\n");
        html.Append("</header>\n");
    }

    static void Code(StringBuilder html, InteractiveDocumentElement element, CellRun? run)
    {
        var status = run?.Status ?? CellStatus.NotRun;
        var state = status switch
        {
            CellStatus.Succeeded => $"{run!.Elapsed.TotalSeconds:0.0} s",
            CellStatus.NotRun => "not run",
            _ => $"{status.ToString().ToLowerInvariant()} after {run!.Elapsed.TotalSeconds:0.0} s",
        };
        html.Append($"<section class=\"cell code {status.ToString().ToLowerInvariant()}\" id=\"cell-{run?.Number}\">\n")
            .Append($"<div class=\"meta\">cell {run?.Number} · {Encode(element.KernelName ?? "csharp")} · {state}</div>\n")
            .Append($"<pre class=\"source\"><code>{Encode(element.Contents)}</code></pre>\n");
        foreach (var output in element.Outputs)
            html.Append("<div class=\"output\">").Append(Output(output)).Append("</div>\n");
        html.Append("</section>\n");
    }

    static string Output(InteractiveDocumentOutputElement output) => output switch
    {
        TextElement t => $"<pre class=\"stream {Encode(t.Name)}\">{Encode(t.Text)}</pre>",
        ErrorElement e => $"<pre class=\"error\"><b>{Encode(e.ErrorName)}</b>: {Encode(e.ErrorValue)}"
            + (e.StackTrace is { Length: > 0 } st ? "\n" + Encode(string.Join("\n", st)) : "") + "</pre>",
        DisplayElement d => Data(d.Data),
        ReturnValueElement r => Data(r.Data),
        _ => "",
    };

    static string Data(IDictionary<string, object> data)
    {
        var mime = MimePreference.FirstOrDefault(data.ContainsKey);
        if (mime is null) return "";
        var value = data[mime]?.ToString() ?? "";
        return mime switch
        {
            "text/html" => WithoutPlotlyBundle(value),
            "image/svg+xml" => value,
            "text/markdown" => Markdig.Markdown.ToHtml(value, Markdown),
            "text/plain" or "application/json" => $"<pre>{Encode(value)}</pre>",
            _ => $"<img alt=\"{mime}\" src=\"data:{mime};base64,{value.Trim()}\">",
        };
    }

    /// <summary>Removes every script element that carries the plotly.js bundle: the head has it already.</summary>
    internal static string WithoutPlotlyBundle(string html)
    {
        var source = PlotlyJs.Source;
        int at;
        while ((at = html.IndexOf(source, StringComparison.Ordinal)) >= 0)
        {
            var start = html.LastIndexOf("<script", at, StringComparison.OrdinalIgnoreCase);
            var end = html.IndexOf("</script>", at + source.Length, StringComparison.OrdinalIgnoreCase);
            html = start < 0 || end < 0
                ? html.Remove(at, source.Length)
                : html.Remove(start, end + "</script>".Length - start);
        }
        return html;
    }

    static string Encode(string? s) => WebUtility.HtmlEncode(s ?? "");

    const string Style = """

        body { margin: 0; background: #fafafa; color: #1f2328; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
        main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
        header h1 { margin: 0 0 4px; font-size: 26px; }
        .about { color: #57606a; margin: 0 0 16px; }
        .stopped { background: #ffebe9; border: 1px solid #ff8182; border-radius: 6px; padding: 8px 12px; }
        .cell { margin: 18px 0; }
        .cell.code { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; }
        .cell.failed, .cell.cancelled { border-color: #cf222e; }
        .cell.notrun { opacity: 0.6; }
        .meta { color: #57606a; font-size: 12px; margin-bottom: 6px; }
        pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; }
        pre.source { background: #f6f8fa; border-radius: 4px; padding: 8px 10px; }
        .output { margin-top: 10px; overflow-x: auto; }
        pre.stderr { color: #9a6700; }
        pre.error { color: #cf222e; background: #fff5f5; border-radius: 4px; padding: 8px 10px; }
        .markdown code, .output code { background: #eff1f3; border-radius: 3px; padding: 0 3px; }
        table { border-collapse: collapse; }
        th, td { border: 1px solid #d0d7de; padding: 3px 8px; }
        img { max-width: 100%; }

        """;
}
