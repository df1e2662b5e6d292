using System.Globalization;
using System.Text;

namespace VisualRft.Experiments;

/// <summary>
/// One measured row: a model after some training, on the tiny analogue's columns — the mean over seeds, with the sample
/// standard deviation (null for one seed or the base model, which is evaluated once) and each seed's values.
/// </summary>
public sealed record MeasuredRow(string Model, RowKind Kind, IReadOnlyList<double?> Values, IReadOnlyList<double?>? Sd = null,
    IReadOnlyList<IReadOnlyList<double?>>? PerSeed = null);

/// <summary>
/// A paper table next to what this package measured for it: the paper's rows of the compared model and setting, the
/// measured rows (base, +SFT, +Visual-RFT and Δ = Visual-RFT − base) on the analogue's columns, which correspond to the
/// paper's by position, and the settings that produced them. Plain data for the views and notebooks.
/// </summary>
/// <param name="Paper">The paper's table.</param>
/// <param name="PaperRows">Its rows compared here (one model and setting).</param>
/// <param name="Scale">"tiny": the synthetic analogue with the built-in tiny model on CPU.</param>
/// <param name="Columns">The measured columns, position by position the analogue of <see cref="PaperTable.Columns"/>; the
/// first (the summary) always corresponds, and an analogue may have fewer or more per-class columns than the paper
/// (Table 8: 13 LVIS rare classes, 8 synthetic ones).</param>
/// <param name="Measured">Base, +SFT, +Visual-RFT, Δ.</param>
/// <param name="Settings">Everything that produced the measured rows (data set, shots, steps, learning rates, seed, ...).</param>
/// <param name="Notes">How the analogue maps onto the paper's setting and what differs.</param>
/// <param name="Seconds">Wall time of the run.</param>
public sealed record TableComparison(PaperTable Paper, IReadOnlyList<PaperRow> PaperRows, string Scale, IReadOnlyList<string> Columns,
    IReadOnlyList<MeasuredRow> Measured, IReadOnlyDictionary<string, string> Settings, IReadOnlyList<string> Notes, double Seconds)
{
    /// <summary>The four measured rows from three evaluations; Δ is computed here.</summary>
    public static IReadOnlyList<MeasuredRow> Rows(IReadOnlyList<double?> baseline, IReadOnlyList<double?> sft, IReadOnlyList<double?> rft) =>
        Rows(baseline, [sft], [rft]);

    /// <summary>The four measured rows over seeds: +SFT, +Visual-RFT and Δ (Visual-RFT − base) as mean ± sd of the seeds' values.</summary>
    public static IReadOnlyList<MeasuredRow> Rows(IReadOnlyList<double?> baseline, IReadOnlyList<IReadOnlyList<double?>> sft, IReadOnlyList<IReadOnlyList<double?>> rft)
    {
        IReadOnlyList<IReadOnlyList<double?>> delta = [.. rft.Select(r => (IReadOnlyList<double?>)[.. r.Zip(baseline, (a, b) => a - b)])];
        MeasuredRow Over(string model, RowKind kind, IReadOnlyList<IReadOnlyList<double?>> seeds)
        {
            var stats = Enumerable.Range(0, seeds[0].Count).Select(i => seeds.Any(v => v[i] is null) ? (MeanSd?)null : MeanSd.Of([.. seeds.Select(v => v[i]!.Value)])).ToList();
            return new(model, kind, [.. stats.Select(m => m?.Mean)], seeds.Count > 1 ? [.. stats.Select(m => m?.Sd)] : null, seeds);
        }
        return [new("base", RowKind.Baseline, baseline), Over("+SFT", RowKind.Sft, sft), Over("+Visual-RFT", RowKind.VisualRft, rft), Over("Δ", RowKind.Delta, delta)];
    }

    /// <summary>Seeds the measured rows average over.</summary>
    public int SeedCount => Measured.Max(r => r.PerSeed?.Count ?? 1);

    /// <summary>
    /// Whether the run shows the paper's ordering on the summary column: Visual-RFT above SFT and above the base model
    /// (means over seeds).
    /// </summary>
    public bool PaperOrdering => Row(RowKind.VisualRft).Values[0] is { } r && Row(RowKind.Sft).Values[0] is { } f && Row(RowKind.Baseline).Values[0] is { } b
        && r > f && r > b;

    public MeasuredRow Row(RowKind kind) => Measured.First(r => r.Kind == kind);

    /// <summary>The header over both: the paper's column and the analogue's at each position, null past the shorter list.</summary>
    public IReadOnlyList<(string? Paper, string? Measured)> ColumnPairs =>
        [.. Enumerable.Range(0, Math.Max(Paper.Columns.Count, Columns.Count))
            .Select(i => (i < Paper.Columns.Count ? Paper.Columns[i] : null, i < Columns.Count ? Columns[i] : (string?)null))];

    /// <summary>Values padded with nulls to the header's width.</summary>
    public IReadOnlyList<double?> Padded(IReadOnlyList<double?> values) =>
        [.. values, .. Enumerable.Repeat<double?>(null, ColumnPairs.Count - values.Count)];

    /// <summary>A Markdown rendering: paper rows, then measured rows, with both column headers.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"### Table {Paper.Number}: {Paper.Title} — paper vs {Scale} analogue");
        sb.AppendLine();
        sb.AppendLine("| row | " + string.Join(" | ", ColumnPairs.Select(c => c.Paper == c.Measured ? c.Paper : $"{c.Paper ?? "–"} ↔ {c.Measured ?? "–"}")) + " |");
        sb.AppendLine("|---|" + string.Concat(ColumnPairs.Select(_ => "---|")));
        foreach (var r in PaperRows)
            sb.AppendLine($"| paper {r.Model} {r.Setting} {Label(r.Kind)} | " + string.Join(" | ", Padded(r.Values).Select(v => Format(v, r.Kind))) + " |");
        foreach (var r in Measured)
            sb.AppendLine($"| {Scale} {r.Model} | " + string.Join(" | ", Padded(r.Values).Select((v, i) => Format(v, r.Kind) + (r.Sd is { } sd && i < sd.Count && sd[i] is { } e ? $" ± {e.ToString("F1", CultureInfo.InvariantCulture)}" : ""))) + " |");
        if (SeedCount > 1) sb.AppendLine($"\n± : standard deviation over {SeedCount} seeds (the base model is evaluated once).");
        sb.AppendLine();
        sb.AppendLine("Settings: " + string.Join("; ", Settings.Select(kv => $"{kv.Key} {kv.Value}")) + $"; {Seconds:F0} s.");
        foreach (var n in Notes) sb.AppendLine("- " + n);
        return sb.ToString();
    }

    static string Label(RowKind k) => k switch
    {
        RowKind.Baseline => "baseline", RowKind.Sft => "+SFT", RowKind.VisualRft => "+Visual-RFT", RowKind.Delta => "Δ", _ => "",
    };

    static string Format(double? v, RowKind k) => v is not { } x ? "–" : double.IsNaN(x) ? "n/a"
        : k == RowKind.Delta ? x.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) : x.ToString("F1", CultureInfo.InvariantCulture);
}
