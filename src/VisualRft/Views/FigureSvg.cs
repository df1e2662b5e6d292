using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>
/// A static SVG of a <see cref="Figure"/>, for viewers that run no scripts: scatter traces (lines, markers, a band filled
/// to the previous trace) and bars (grouped or stacked) on numeric axes, with the title, axis titles and a legend. Other
/// trace types are listed under the chart as drawn only interactively. Hand-written rather than a charting library: the
/// SVG must match the plotly figure trace for trace, and the libraries at hand (ScottPlot) need native Skia and system
/// fonts that a notebook kernel cannot count on.
/// </summary>
public static class FigureSvg
{
    sealed record Series(string Type, string Name, double?[] X, double?[] Y, string Color, string Mode, string? Fill, string? FillColor,
        bool Legend, string? Dash);

    public static string Render(Figure figure)
    {
        var layout = figure.Layout;
        double width = Num(layout["width"]) ?? 380, height = Num(layout["height"]) ?? 250;
        var margin = layout["margin"] as JsonObject;
        double ml = Num(margin?["l"]) ?? 50, mr = Num(margin?["r"]) ?? 12, mt = Num(margin?["t"]) ?? 34, mb = Num(margin?["b"]) ?? 40;
        var series = new List<Series>();
        var skipped = new List<string>();
        int auto = 0;
        foreach (var t in figure.Data.OfType<JsonObject>())
        {
            var type = t["type"]?.GetValue<string>() ?? "scatter";
            if (type is not ("scatter" or "bar")) { skipped.Add(type); continue; }
            var y = Values(t["y"]);
            var x = t["x"] is JsonArray ? Values(t["x"]) : [.. Enumerable.Range(0, y.Length).Select(i => (double?)i)];
            var color = (t["line"]?["color"] ?? t["marker"]?["color"])?.GetValue<string>() ?? Palette[auto++ % Palette.Length];
            series.Add(new Series(type, t["name"]?.GetValue<string>() ?? "", x, y, color, t["mode"]?.GetValue<string>() ?? "lines+markers",
                t["fill"]?.GetValue<string>(), t["fillcolor"]?.GetValue<string>(), t["showlegend"]?.GetValue<bool>() ?? true, t["line"]?["dash"]?.GetValue<string>()));
        }
        var stacked = layout["barmode"]?.GetValue<string>() == "stack";
        var bars = series.Where(s => s.Type == "bar").ToList();

        // Data ranges (stacked bars add up per x).
        var xs = series.SelectMany(s => s.X).OfType<double>().ToList();
        var ys = series.Where(s => s.Type == "scatter").SelectMany(s => s.Y).OfType<double>().ToList();
        if (bars.Count > 0)
        {
            ys.Add(0);
            if (stacked)
                ys.AddRange(bars.SelectMany(b => b.X.Zip(b.Y)).Where(p => p.First is not null).GroupBy(p => p.First!.Value).Select(g => g.Sum(p => p.Second ?? 0)));
            else ys.AddRange(bars.SelectMany(b => b.Y).OfType<double>());
        }
        var yRange = (layout["yaxis"]?["range"] as JsonArray)?.Select(v => Num(v)).ToArray();
        double x0 = xs.Count > 0 ? xs.Min() : 0, x1 = xs.Count > 0 ? xs.Max() : 1;
        double y0 = yRange is [{ } lo, { }] ? lo : ys.Count > 0 ? ys.Min() : 0, y1 = yRange is [{ }, { } hi] ? hi : ys.Count > 0 ? ys.Max() : 1;
        if (bars.Count > 0) { x0 -= 0.5; x1 += 0.5; }
        if (x1 - x0 < 1e-12) { x0 -= 0.5; x1 += 0.5; }
        if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
        var yTicks = Ticks(y0, y1, 5);
        if (yRange is null) { y0 = Math.Min(y0, yTicks[0]); y1 = Math.Max(y1, yTicks[^1]); }
        var xTicks = Ticks(x0, x1, 6).Where(v => v >= x0 - 1e-9 && v <= x1 + 1e-9).ToArray();
        yTicks = [.. yTicks.Where(v => v >= y0 - 1e-9 && v <= y1 + 1e-9)];

        double pw = width - ml - mr, ph = height - mt - mb;
        double X(double v) => ml + (v - x0) / (x1 - x0) * pw;
        double Y(double v) => mt + (1 - (v - y0) / (y1 - y0)) * ph;

        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"vrft-figure\" width=\"{F(width)}\" height=\"{F(height)}\" viewBox=\"0 0 {F(width)} {F(height)}\" font-family=\"DejaVu Sans,sans-serif\" font-size=\"11\">");
        sb.Append($"<rect width=\"{F(width)}\" height=\"{F(height)}\" fill=\"#fff\"/>");
        sb.Append($"<text x=\"{F(width / 2)}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" fill=\"#1f2328\">{E(figure.Title)}</text>");
        foreach (var v in yTicks)
            sb.Append($"<line x1=\"{F(ml)}\" x2=\"{F(ml + pw)}\" y1=\"{F(Y(v))}\" y2=\"{F(Y(v))}\" stroke=\"#eaeef2\"/><text x=\"{F(ml - 4)}\" y=\"{F(Y(v) + 4)}\" text-anchor=\"end\" fill=\"#656d76\">{Tick(v)}</text>");
        foreach (var v in xTicks)
            sb.Append($"<text x=\"{F(X(v))}\" y=\"{F(mt + ph + 14)}\" text-anchor=\"middle\" fill=\"#656d76\">{Tick(v)}</text>");
        sb.Append($"<rect x=\"{F(ml)}\" y=\"{F(mt)}\" width=\"{F(pw)}\" height=\"{F(ph)}\" fill=\"none\" stroke=\"#d0d7de\"/>");

        // Bars first, under the lines.
        if (bars.Count > 0)
        {
            var slot = pw / (x1 - x0);
            var bw = stacked ? slot * 0.7 : slot * 0.7 / bars.Count;
            var bottoms = new Dictionary<double, double>();
            for (int k = 0; k < bars.Count; k++)
                foreach (var (x, y) in bars[k].X.Zip(bars[k].Y))
                {
                    if (x is not { } xv || y is not { } yv) continue;
                    var b = stacked ? bottoms.GetValueOrDefault(xv) : 0;
                    var left = stacked ? X(xv) - bw / 2 : X(xv) - slot * 0.35 + k * bw;
                    sb.Append($"<rect class=\"vrft-bar\" x=\"{F(left)}\" y=\"{F(Y(Math.Max(b, b + yv)))}\" width=\"{F(bw)}\" height=\"{F(Math.Abs(Y(b) - Y(b + yv)))}\" fill=\"{bars[k].Color}\"/>");
                    if (stacked) bottoms[xv] = b + yv;
                }
        }
        Series? previous = null;
        foreach (var s in series.Where(s => s.Type == "scatter"))
        {
            var points = s.X.Zip(s.Y).ToList();
            if (s.Fill == "tonexty" && previous is not null)
            {
                var upper = points.Where(p => p.First is not null && p.Second is not null).Select(p => $"{F(X(p.First!.Value))},{F(Y(p.Second!.Value))}");
                var lower = previous.X.Zip(previous.Y).Where(p => p.First is not null && p.Second is not null).Reverse().Select(p => $"{F(X(p.First!.Value))},{F(Y(p.Second!.Value))}");
                sb.Append($"<polygon class=\"vrft-band\" points=\"{string.Join(' ', upper.Concat(lower))}\" fill=\"{s.FillColor ?? s.Color}\" stroke=\"none\"/>");
            }
            if (s.Mode.Contains("lines"))
                foreach (var run in Runs(points))
                    if (run.Count > 1)
                        sb.Append($"<polyline class=\"vrft-line\" points=\"{string.Join(' ', run.Select(p => $"{F(X(p.X))},{F(Y(p.Y))}"))}\" fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"{(s.Fill is null ? 2 : 0)}\"{(s.Dash is null ? "" : " stroke-dasharray=\"5 3\"")}/>");
            if (s.Mode.Contains("markers") || (s.Mode.Contains("lines") && Runs(points).All(r => r.Count == 1)))
                foreach (var run in Runs(points))
                    foreach (var p in run)
                        sb.Append($"<circle cx=\"{F(X(p.X))}\" cy=\"{F(Y(p.Y))}\" r=\"2.5\" fill=\"{s.Color}\"/>");
            previous = s;
        }

        var legend = series.Where(s => s.Legend && s.Name.Length > 0).ToList();
        if (legend.Count > 1)
        {
            double lx = ml, ly = height - 6;
            foreach (var s in legend)
            {
                sb.Append($"<rect x=\"{F(lx)}\" y=\"{F(ly - 8)}\" width=\"10\" height=\"8\" fill=\"{s.Color}\"/><text x=\"{F(lx + 13)}\" y=\"{F(ly)}\" fill=\"#1f2328\">{E(s.Name)}</text>");
                lx += 22 + 6.2 * s.Name.Length;
            }
        }
        else
        {
            var xt = layout["xaxis"]?["title"]?["text"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(xt)) sb.Append($"<text x=\"{F(ml + pw / 2)}\" y=\"{F(height - 6)}\" text-anchor=\"middle\" fill=\"#656d76\">{E(xt)}</text>");
        }
        if (skipped.Count > 0)
            sb.Append($"<text x=\"{F(ml + 4)}\" y=\"{F(mt + 14)}\" fill=\"#cf222e\">{E($"{skipped.Count} {string.Join("/", skipped.Distinct())} trace(s): interactive view only")}</text>");
        return sb.Append("</svg>").ToString();
    }

    static readonly string[] Palette = ["#0969da", "#cf222e", "#1a7f37", "#bf8700", "#8250df", "#e16f24", "#1b7c83"];

    static IEnumerable<List<(double X, double Y)>> Runs(List<(double? X, double? Y)> points)
    {
        var run = new List<(double, double)>();
        foreach (var (x, y) in points)
        {
            if (x is { } a && y is { } b) { run.Add((a, b)); continue; }
            if (run.Count > 0) { yield return run; run = []; }
        }
        if (run.Count > 0) yield return run;
    }

    static double?[] Values(JsonNode? node) => node is JsonArray a ? [.. a.Select(Num)] : [];

    static double? Num(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d : null;

    /// <summary>About <paramref name="count"/> round tick values covering [lo, hi] (1, 2, 5 × 10^k steps).</summary>
    internal static double[] Ticks(double lo, double hi, int count)
    {
        var raw = (hi - lo) / Math.Max(1, count);
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1, 2, 5, 10 }.Select(m => m * mag).First(s => s >= raw);
        var start = Math.Floor(lo / step) * step;
        var ticks = new List<double>();
        for (var v = start; v <= hi + step * 0.5 && ticks.Count < 50; v += step) ticks.Add(Math.Round(v / step) * step);
        return [.. ticks];
    }

    static string Tick(double v) => Math.Abs(v) >= 10000 ? v.ToString("0.#e0", CultureInfo.InvariantCulture)
        : Math.Round(v, 6).ToString("0.######", CultureInfo.InvariantCulture);
}
