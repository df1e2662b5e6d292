using System.Text;
using VisualRft.Experiments;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>The paper's tables: as printed, and beside the rows this package measured for them, with Δ columns.</summary>
public static class TableViews
{
    static string Label(RowKind k, string setting) => (setting.Length > 0 ? setting + " " : "") + k switch
    {
        RowKind.Baseline => "baseline", RowKind.Sft => "+SFT", RowKind.VisualRft => "+Visual-RFT", RowKind.Delta => "Δ", _ => "",
    };

    static string Cell(double? v, RowKind kind, double? sd = null)
    {
        if (v is not { } x) return "<td class=muted>–</td>";
        if (double.IsNaN(x)) return "<td class=muted>n/a</td>";
        var spread = sd is { } s ? $"<span class=muted style=\"font-size:11px\"> ± {N(s, 1)}</span>" : "";
        return kind == RowKind.Delta ? $"<td style=\"color:{(x > 0 ? "#1a7f37" : x < 0 ? "#cf222e" : "#656d76")}\"><i>{Signed(x, 1)}</i>{spread}</td>"
            : $"<td>{N(x, 1)}{spread}</td>";
    }

    /// <summary>A paper table as printed, with its notes and the inconsistencies its numbers have.</summary>
    public static View Paper(PaperTable t)
    {
        var html = new StringBuilder($"<h4>Table {t.Number}: {E(t.Title)}</h4><div class=muted>{E(t.Metric)}</div>")
            .Append(Table(["<span class=l>model</span>", "<span class=l>row</span>", .. t.Columns.Select(E)],
                t.Rows.Select(r => (string[])[$"<td class=l>{E(r.Model)}</td>", $"<td class=l>{E(Label(r.Kind, r.Setting))}</td>", .. r.Values.Select(v => Cell(v, r.Kind))])));
        foreach (var n in t.Notes) html.Append($"<div class=muted>• {E(n)}</div>");
        foreach (var i in t.Inconsistencies()) html.Append($"<div class=bad>⚠ {E(i)}</div>");
        return new View(Root(html.ToString(), "paper-table"),
            EvaluationViews.SvgTable(["model", "row", .. t.Columns], t.Rows.Select(r => (string[])[r.Model, Label(r.Kind, r.Setting), .. r.Values.Select(v => v is { } x ? N(x, 1) : "–")])),
            $"paper Table {t.Number}: {t.Title} ({t.Rows.Count} rows)");
    }

    /// <summary>The paper's rows of one setting over the rows measured for its analogue, with settings, notes and a chart.</summary>
    public static View Comparison(TableComparison c)
    {
        var header = c.ColumnPairs.Select(p => p.Paper == p.Measured ? E(p.Paper!) : $"{E(p.Paper ?? "–")}<br><span class=muted>↔ {E(p.Measured ?? "–")}</span>");
        var rows = c.PaperRows.Select(r => (string[])[$"<td class=l>paper: {E(r.Model)} {E(Label(r.Kind, r.Setting))}</td>", .. c.Padded(r.Values).Select(v => Cell(v, r.Kind))])
            .Append(Enumerable.Repeat("<td style=\"border:none;height:6px\"></td>", c.ColumnPairs.Count + 1).ToArray())
            .Concat(c.Measured.Select(r => (string[])[$"<td class=l><b>{E(c.Scale)}: {E(r.Model)}</b></td>",
                .. c.Padded(r.Values).Select((v, i) => Cell(v, r.Kind, r.Sd is { } sd && i < sd.Count ? sd[i] : null))]));
        var html = new StringBuilder($"<h4>Table {c.Paper.Number}: {E(c.Paper.Title)} — paper vs {E(c.Scale)} analogue</h4>")
            .Append($"<div class=muted>{E(c.Paper.Metric)}</div>")
            .Append(Table(["<span class=l>row</span>", .. header], rows));
        if (c.SeedCount > 1) html.Append($"<div class=muted>± : standard deviation over {c.SeedCount} seeds; the base model is evaluated once.</div>");
        html.Append(c.PaperOrdering
            ? $"<div class=ok>the paper's ordering holds on {E(c.Columns[0])}: Visual-RFT above SFT and above the base model</div>"
            : $"<div class=bad>the paper's ordering does not hold on {E(c.Columns[0])}: Visual-RFT is not above both SFT and the base model</div>");
        var figure = new Figure($"Table {c.Paper.Number}: {c.Columns[0]}", "", width: 420);
        double[] x = [0, 1, 2];
        var paper = c.PaperRows.Where(r => r.Kind != RowKind.Delta).ToList();
        double Summary(IReadOnlyList<double?> v) => v[0] ?? double.NaN;
        double? Pick(IEnumerable<PaperRow> rs, RowKind k) => rs.FirstOrDefault(r => r.Kind == k) is { } r ? Summary(r.Values) : null;
        RowKind[] kinds = [RowKind.Baseline, RowKind.Sft, RowKind.VisualRft];
        figure.Bars($"paper ({paper.FirstOrDefault()?.Model})", x, [.. kinds.Select(k => Pick(paper, k) ?? double.NaN)], "#8c959f", stack: false)
              .Bars($"{c.Scale} (mean)", x, [.. kinds.Select(k => Summary(c.Row(k).Values))], "#0969da", stack: false);
        if (c.SeedCount > 1)
        {
            var seeds = kinds.SelectMany((k, i) => (c.Row(k).PerSeed ?? [c.Row(k).Values]).Select(v => (X: (double)i, Y: Summary(v)))).ToList();
            figure.Points($"{c.Scale}, each seed", [.. seeds.Select(p => p.X)], [.. seeds.Select(p => p.Y)], "#1f2328");
        }
        figure.Layout["xaxis"]!["tickvals"] = new System.Text.Json.Nodes.JsonArray(0, 1, 2);
        figure.Layout["xaxis"]!["ticktext"] = new System.Text.Json.Nodes.JsonArray("base", "+SFT", "+Visual-RFT");
        html.Append(Chart.Html(figure));
        html.Append("<details><summary>settings</summary>")
            .Append(Table(["", ""], c.Settings.Select(kv => (string[])[$"<td class=l>{E(kv.Key)}</td>", $"<td class=l>{E(kv.Value)}</td>"])))
            .Append($"<div class=muted>{TrainingViews.Duration(TimeSpan.FromSeconds(c.Seconds))}</div></details>");
        foreach (var n in c.Notes) html.Append($"<div class=muted>• {E(n)}</div>");
        var d = c.Row(RowKind.Delta).Values[0];
        return new View(Root(html.ToString(), "table-comparison"),
            EvaluationViews.SvgTable(["row", .. c.Columns], c.Measured.Select(r => (string[])[$"{c.Scale} {r.Model}", .. r.Values.Select(v => v is { } y ? N(y, 1) : "–")])),
            $"Table {c.Paper.Number} ({c.Scale}): {c.Columns[0]} base {N(Summary(c.Row(RowKind.Baseline).Values), 1)}, +SFT {N(Summary(c.Row(RowKind.Sft).Values), 1)}, "
            + $"+Visual-RFT {N(Summary(c.Row(RowKind.VisualRft).Values), 1)} (Δ {(d is { } dd ? Signed(dd, 1) : "–")})");
    }
}
