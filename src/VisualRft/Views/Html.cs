using System.Globalization;
using System.Net;
using System.Text;

namespace VisualRft.Views;

/// <summary>What every view is made of: a rich HTML rendering (inline SVG, plotly charts that fall back to SVG), a
/// static SVG for viewers that run no scripts and show no HTML, and a one-line text.</summary>
/// <param name="Html">A self-contained fragment (its own stylesheet, no external resources).</param>
/// <param name="Svg">A standalone SVG document with the view's picture (image/svg+xml).</param>
/// <param name="Text">One line for text/plain.</param>
public sealed record View(string Html, string Svg, string Text)
{
    public override string ToString() => Text;
}

/// <summary>Small helpers for writing HTML by hand (escaping, numbers, the shared stylesheet).</summary>
internal static class Html
{
    static long _nextId;

    /// <summary>An element id unique in the process (and so on any page its views share), e.g. vrft-chart-1f2a-7.</summary>
    public static string NewId(string kind) => $"vrft-{kind}-{Environment.ProcessId:x}-{Interlocked.Increment(ref _nextId)}";

    /// <summary>Escaped text that is also valid XML (views embed SVG): control characters become their visible symbols
    /// (U+2400 block) and lone surrogates U+FFFD — model output can contain anything.</summary>
    public static string E(string? s) => WebUtility.HtmlEncode(Printable(s ?? ""));

    static string Printable(string s)
    {
        if (!s.Any(c => (c < 0x20 && c is not ('\t' or '\n' or '\r')) || char.IsSurrogate(c))) return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(c).Append(s[++i]); continue; }
            sb.Append(c < 0x20 && c is not ('\t' or '\n' or '\r') ? (char)(0x2400 + c) : char.IsSurrogate(c) ? '\uFFFD' : c);
        }
        return sb.ToString();
    }

    /// <summary>A number for people: NaN and infinities spelled out, at most <paramref name="digits"/> decimals.</summary>
    public static string N(double v, int digits = 3) => double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "∞"
        : double.IsNegativeInfinity(v) ? "−∞"
        // Not a misleading 0: one significant digit down to 0.001, scientific below.
        : v != 0 && Math.Abs(v) < 0.5 * Math.Pow(10, -digits)
            ? Math.Abs(v) >= 0.001 ? v.ToString("0.###", CultureInfo.InvariantCulture) : v.ToString("0.#e0", CultureInfo.InvariantCulture)
        : Math.Round(v, digits).ToString("0." + new string('#', digits), CultureInfo.InvariantCulture);

    /// <summary>A number with a sign, for Δ and advantages.</summary>
    public static string Signed(double v, int digits = 3) => double.IsFinite(v) && v > 0 ? "+" + N(v, digits) : N(v, digits);

    /// <summary>Invariant-culture number for SVG and JSON attributes.</summary>
    public static string F(double v) => Math.Round(v, 3).ToString(CultureInfo.InvariantCulture);

    /// <summary>Wraps a view's body in the root element that carries the stylesheet.</summary>
    public static string Root(string body, string kind) => $"<div class=\"vrft vrft-{kind}\">{Style}{body}</div>";

    public static string Table(IEnumerable<string> header, IEnumerable<IEnumerable<string>> rows, string? cls = null)
    {
        var sb = new StringBuilder($"<table{(cls is null ? "" : $" class=\"{cls}\"")}><thead><tr>");
        foreach (var h in header) sb.Append("<th>").Append(h).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var r in rows)
        {
            sb.Append("<tr>");
            foreach (var c in r) sb.Append(c.StartsWith("<td", StringComparison.Ordinal) ? c : "<td>" + c + "</td>");
            sb.Append("</tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    const string Style = """
<style>
.vrft{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;font-size:13px;color:#1f2328;line-height:1.45;max-width:100%}
.vrft table{border-collapse:collapse;margin:4px 0}
.vrft td,.vrft th{border:1px solid #d0d7de;padding:2px 7px;text-align:right;vertical-align:top}
.vrft th{background:#f6f8fa;font-weight:600}
.vrft td.l,.vrft th.l{text-align:left}
.vrft .row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.vrft .card{border:1px solid #d0d7de;border-radius:6px;padding:6px 8px;background:#fff}
.vrft .muted{color:#656d76}
.vrft .ok{color:#1a7f37;font-weight:600}
.vrft .bad{color:#cf222e;font-weight:600}
.vrft h4{margin:4px 0;font-size:14px}
.vrft code,.vrft pre{font-family:ui-monospace,SFMono-Regular,Menlo,"DejaVu Sans Mono",monospace;font-size:12px}
.vrft pre{white-space:pre-wrap;word-break:break-word;margin:2px 0;background:#f6f8fa;padding:4px 6px;border-radius:4px;max-height:12em;overflow:auto}
.vrft .tok{white-space:pre-wrap;border-radius:2px;padding:1px 0;margin:0 0 1px 0;font-family:ui-monospace,Menlo,"DejaVu Sans Mono",monospace;font-size:12px;line-height:1.8}
.vrft .masked{opacity:.35;text-decoration:line-through}
.vrft details>summary{cursor:pointer;color:#0969da}
.vrft .bar{height:12px;background:#eaeef2;border-radius:6px;overflow:hidden;min-width:240px}
.vrft .bar>div{height:100%;background:#2da44e}
.vrft .swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 3px 0 8px;vertical-align:middle}
.vrft .chart{display:inline-block;vertical-align:top;margin:2px}
.vrft button{font-size:12px;margin-right:4px}
</style>
""";
}
