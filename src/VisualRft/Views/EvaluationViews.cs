using System.Text;
using VisualRft.Data;
using VisualRft.Evaluation;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>Held-out results: one report with its answers drawn, and several side by side in the paper's layout with Δ rows.</summary>
public static class EvaluationViews
{
    /// <summary>The columns a report fills: the task's quality measures, then the reward components and the total.</summary>
    static IReadOnlyList<(string Name, Func<EvaluationReport, double> Value, int Digits)> Columns(EvaluationReport first) =>
    [
        .. first.Detection is null ? [] : new (string, Func<EvaluationReport, double>, int)[]
        {
            ("mAP", r => r.Detection?.MeanAp ?? double.NaN, 1), ("AP50", r => r.Detection?.MeanAp50 ?? double.NaN, 1),
            ("AP75", r => r.Detection?.MeanAp75 ?? double.NaN, 1), ("P@0.5", r => r.Detection?.Precision50 ?? double.NaN, 2),
            ("R@0.5", r => r.Detection?.Recall50 ?? double.NaN, 2),
        },
        .. first.Accuracy is null ? [] : new (string, Func<EvaluationReport, double>, int)[] { ("accuracy %", r => 100 * (r.Accuracy ?? double.NaN), 1) },
        .. first.MeanIoU is null ? [] : new (string, Func<EvaluationReport, double>, int)[] { ("mIoU", r => r.MeanIoU ?? double.NaN, 3) },
        .. first.Rewards.Keys.Select(k => (k, (Func<EvaluationReport, double>)(r => r.Rewards.TryGetValue(k, out var s) ? s.Mean : double.NaN), 3)),
        ("reward", r => r.Reward.Mean, 3),
    ];

    /// <summary>Several evaluations of the same held-out set (base, +SFT, +Visual-RFT …), with a Δ row against the first.</summary>
    public static View Compare(IReadOnlyList<EvaluationReport> reports)
    {
        if (reports.Count == 0) throw new ArgumentException("no evaluations to compare", nameof(reports));
        var cols = Columns(reports[0]);
        var rows = reports.Select(r => (string[])[$"<td class=l>{E(r.Label)}</td>", .. cols.Select(c => N(c.Value(r), c.Digits))]).ToList();
        for (int i = 1; i < reports.Count; i++)
            rows.Add([$"<td class=l><i>Δ {E(reports[i].Label)}</i></td>", .. cols.Select(c => Delta(c.Value(reports[i]) - c.Value(reports[0]), c.Digits))]);
        var html = new StringBuilder($"<div class=muted>{reports[0].Samples.Count} held-out samples; greedy decoding{(reports.Count > 1 ? $"; Δ against {E(reports[0].Label)}" : "")}</div>")
            .Append(Table(["<span class=l>model</span>", .. cols.Select(c => E(c.Name))], rows));
        var figure = new Figure("held-out reward", "");
        figure.Bars("reward", [.. Enumerable.Range(0, reports.Count).Select(i => (double)i)], [.. reports.Select(r => r.Reward.Mean)], "#0969da", stack: false);
        var text = string.Join("; ", reports.Select(r => $"{r.Label}: reward {N(r.Reward.Mean)}" + (r.Detection is { } d ? $", mAP {N(d.MeanAp, 1)}" : "")));
        return new View(Root(html.ToString(), "comparison"), SvgTable(["model", .. cols.Select(c => c.Name)], reports.Select(r => (string[])[r.Label, .. cols.Select(c => N(c.Value(r), c.Digits))])), text);
    }

    static string Delta(double v, int digits) =>
        double.IsFinite(v) ? $"<td style=\"color:{(v > 0 ? "#1a7f37" : v < 0 ? "#cf222e" : "#656d76")}\">{Signed(v, digits)}</td>" : "<td>—</td>";

    /// <summary>One evaluation: its numbers, per-category AP for detection, and the first answers drawn over their images.</summary>
    public static View Report(EvaluationReport r, int examples = 6)
    {
        var html = new StringBuilder($"<h4>{E(r.Label)}</h4>").Append(Compare([r]).Html);
        if (r.Detection is { } d)
            html.Append("<details><summary>per category</summary>").Append(Table(["<span class=l>category</span>", "GT", "preds", "AP", "AP50", "AP75"],
                d.PerCategory.Select(c => new[] { $"<td class=l>{E(c.Category)}</td>", c.GroundTruths.ToString(), c.Predictions.ToString(), N(c.Ap, 1), N(c.Ap50, 1), N(c.Ap75, 1) })))
                .Append("</details>");
        var shown = r.Samples.Take(examples).ToList();
        html.Append("<div class=row>");
        var svgs = new List<string>();
        foreach (var e in shown)
        {
            var reading = RewardViews.Read(e.Reward, e.Sample);
            var frames = new Geometry.ImageFrames(new(e.Sample.Width, e.Sample.Height), new(e.Sample.Width, e.Sample.Height));
            var svg = Overlay.Svg(e.Sample.Image, SampleViews.Truth(e.Sample).Concat(RewardViews.Predicted(reading, frames, Geometry.CoordinateFrame.Normalized1000)), 180);
            svgs.Add(svg);
            html.Append($"<div class=card style=\"max-width:200px\">{svg}<div>reward {N(e.Reward.Total)}</div><code class=muted>{E(Rewards.Parsing.Answers.Blocks(e.Completion).Answer ?? e.Completion)}</code></div>");
        }
        html.Append("</div>");
        return new View(Root(html.ToString(), "evaluation"), SampleViews.GallerySvg(shown.Select(e => e.Sample).ToList()),
            $"{r.Label}: {r.Samples.Count} samples, reward {N(r.Reward.Mean)}" + (r.Detection is { } dm ? $", mAP {N(dm.MeanAp, 1)}, AP50 {N(dm.MeanAp50, 1)}" : "")
            + (r.Accuracy is { } a ? $", accuracy {N(100 * a, 1)}%" : "") + (r.MeanIoU is { } m ? $", mIoU {N(m)}" : ""));
    }

    /// <summary>A table as SVG text rows (for viewers without HTML).</summary>
    internal static string SvgTable(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Count).Select(c => all.Max(r => c < r.Count ? r[c].Length : 0) * 7.0 + 14).ToArray();
        var sb = new StringBuilder();
        double y = 0;
        foreach (var (row, i) in all.Select((r, i) => (r, i)))
        {
            y += 20;
            double x = 0;
            for (int c = 0; c < row.Count; c++)
            {
                sb.Append($"<text x=\"{F(x + 6)}\" y=\"{F(y - 6)}\"{(i == 0 ? " font-weight=\"bold\"" : "")}>{E(row[c])}</text>");
                x += widths[c];
            }
            sb.Append($"<line x1=\"0\" x2=\"{F(widths.Sum())}\" y1=\"{F(y)}\" y2=\"{F(y)}\" stroke=\"#d0d7de\"/>");
        }
        return $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(widths.Sum())}\" height=\"{F(y + 4)}\" font-family=\"DejaVu Sans,sans-serif\" font-size=\"12\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>{sb}</svg>";
    }
}
