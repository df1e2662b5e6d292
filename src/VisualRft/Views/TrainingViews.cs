using System.Text;
using VisualRft.Grpo;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>
/// A run in progress, as its dashboard shows it: the steps so far, how many the run has, the wall time, and what it is
/// doing now. Plain data; the kernel extension redraws it after every step.
/// </summary>
/// <param name="Steps">Metrics of every step so far, oldest first.</param>
/// <param name="TotalSteps">Steps the run will have: the progress bar's end.</param>
/// <param name="Target">Steps this call was asked for (the ETA counts toward it).</param>
/// <param name="Elapsed">Wall time since this call started.</param>
/// <param name="State">"training", "done", "cancelled after step 12", …</param>
public sealed record TrainingDashboard(IReadOnlyList<StepMetrics> Steps, int TotalSteps, int Target, TimeSpan Elapsed, string State);

/// <summary>Training: one step, the live dashboard, and one prompt's completions across steps.</summary>
public static class TrainingViews
{
    static readonly string[] ComponentColors = ["#1a7f37", "#bf8700", "#8250df", "#e16f24", "#1b7c83"];

    public static View Step(Episode e)
    {
        var m = e.Metrics;
        var html = new StringBuilder($"<h4>step {m.Step}{(m.Skipped ? " <span class=bad>skipped</span>" : "")}</h4>")
            .Append(MetricsTable([m]))
            .Append(m.Skipped ? $"<div class=bad>{E(m.SkipReason)}</div>" : "")
            .Append(TimeBar(m.Time));
        foreach (var (b, k) in e.Batches.Select((b, k) => (b, k)))
            html.Append($"<details><summary>micro-batch {k + 1}: {E(string.Join(", ", b.Rollout.Samples.Select(s => s.Id)))}</summary>")
                .Append(RolloutViews.Batch(b).Html).Append("</details>");
        var svg = RolloutViews.Stack([.. e.Batches.Select(b => RolloutViews.Batch(b).Svg)]);
        return new View(Root(html.ToString(), "step"), svg, StepLine(m));
    }

    /// <summary>What one update did: the loss, KL, clipping, gradient norm, learning rate and time.</summary>
    public static View Update(UpdateResult u)
    {
        var rows = new (string, string)[]
        {
            ("loss", N(u.Loss, 5)), ("KL (token mean)", u.Kl is { } k ? N(k, 5) : "— (no reference, β = 0)"),
            ("clipped tokens", N(u.ClipFraction, 3)), ("gradient norm", $"{N(u.GradNorm, 4)} before clipping"),
            ("learning rate", u.LearningRate.ToString("0.###e0", System.Globalization.CultureInfo.InvariantCulture)),
            ("optimizer step", u.OptimizerStep.ToString()), ("time", $"policy {N(u.PolicyMs, 0)} ms + optimizer {N(u.OptimizerMs, 0)} ms"),
            ("applied", u.Skipped ? $"no — {u.SkipReason}" : "yes"),
        };
        var html = $"<h4>update{(u.Skipped ? " <span class=bad>skipped</span>" : "")}</h4>"
            + Table(["", ""], rows.Select(r => new[] { $"<td class=l>{r.Item1}</td>", $"<td class=l>{E(r.Item2)}</td>" }));
        return new View(Root(html, "update"), EvaluationViews.SvgTable(["update", ""], rows.Select(r => new[] { r.Item1, r.Item2 })),
            $"update → optimizer step {u.OptimizerStep}: loss {N(u.Loss, 5)}, kl {(u.Kl is { } kl ? N(kl, 5) : "—")}, grad norm {N(u.GradNorm, 4)}"
            + (u.Skipped ? $", SKIPPED: {u.SkipReason}" : ""));
    }

    static string StepLine(StepMetrics m) =>
        $"step {m.Step}: reward {N(m.Reward.Mean)} ± {N(m.Reward.Std)}, kl {(m.Kl is { } k ? N(k, 4) : "—")}, loss {N(m.Loss, 4)}, "
        + $"len {N(m.CompletionLength, 1)}, {N(m.Time.TotalMs, 0)} ms" + (m.Skipped ? $" SKIPPED: {m.SkipReason}" : "");

    static string MetricsTable(IReadOnlyList<StepMetrics> steps)
    {
        var names = steps[0].Rewards.Keys.ToList();
        return Table(["step", "reward", .. names.Select(E), "zero-std", "KL", "loss", "clip", "grad norm", "length", "lr", "ms", "tok/s"],
            steps.Select(m => (string[])
            [
                m.Step.ToString(), $"{N(m.Reward.Mean)} ± {N(m.Reward.Std)}", .. names.Select(n => N(m.Rewards[n].Mean)),
                N(m.FractionZeroStdGroups, 2), m.Kl is { } k ? N(k, 4) : "—", N(m.Loss, 4), N(m.ClipFraction, 3), N(m.GradNorm, 3),
                N(m.CompletionLength, 1), m.LearningRate.ToString("0.##e0", System.Globalization.CultureInfo.InvariantCulture), N(m.Time.TotalMs, 0), N(m.TokensPerSecond, 0),
            ]));
    }

    static readonly (string Name, string Color, Func<StepTimings, double> Ms)[] Phases =
    [
        ("generate", "#0969da", t => t.GenerateMs), ("reference", "#8250df", t => t.ReferenceMs),
        ("policy", "#bf8700", t => t.PolicyMs), ("optimizer", "#1a7f37", t => t.OptimizerMs),
    ];

    static string TimeBar(StepTimings t)
    {
        var total = Math.Max(t.TotalMs, 1e-9);
        var sb = new StringBuilder("<div class=muted>time split</div><div style=\"display:flex;height:14px;max-width:480px;border-radius:4px;overflow:hidden\">");
        foreach (var (name, color, ms) in Phases)
            sb.Append($"<div title=\"{name} {N(ms(t), 0)} ms\" style=\"width:{F(100 * ms(t) / total)}%;background:{color}\"></div>");
        sb.Append("</div><div>");
        foreach (var (name, color, ms) in Phases) sb.Append($"<span class=swatch style=\"background:{color}\"></span>{name} {N(ms(t), 0)} ms");
        return sb.Append("</div>").ToString();
    }

    /// <summary>The dashboard: progress with ETA, and one chart per signal that Visual-RFT runs are debugged with.</summary>
    public static View Dashboard(TrainingDashboard d)
    {
        var steps = d.Steps;
        var done = steps.Count;
        var html = new StringBuilder();
        var last = steps.LastOrDefault();
        var perStep = done == 0 ? TimeSpan.Zero : d.Elapsed / done;
        var remaining = Math.Max(0, d.Target - done);
        var eta = remaining == 0 || done == 0 ? "" : $", about {Duration(perStep * remaining)} to go";
        var reached = last?.Step ?? 0;
        html.Append($"<div class=row style=\"align-items:center\"><div class=bar style=\"width:320px\"><div style=\"width:{F(100.0 * reached / Math.Max(1, d.TotalSteps))}%\"></div></div>")
            .Append($"<div><b>{E(d.State)}</b>: step {reached} of {d.TotalSteps} ({done} this run, {Duration(d.Elapsed)}{eta})</div></div>");
        if (last is not null) html.Append($"<div class=muted>last: {E(StepLine(last))}</div>");
        var figures = done == 0 ? [] : Figures(steps);
        html.Append("<div class=row>");
        foreach (var f in figures) html.Append(Chart.Html(f));
        html.Append("</div>");
        var skipped = steps.Where(s => s.Skipped).ToList();
        if (skipped.Count > 0)
            html.Append($"<div class=bad>{skipped.Count} skipped step(s): {E(string.Join("; ", skipped.Take(3).Select(s => $"{s.Step}: {s.SkipReason}")))}</div>");
        if (done > 0) html.Append($"<details><summary>all {done} steps</summary>{MetricsTable(steps)}</details>");
        var text = $"{d.State}: step {reached}/{d.TotalSteps}" + (last is null ? "" : $", reward {N(last.Reward.Mean)}, {Duration(d.Elapsed)}");
        return new View(Root(html.ToString(), "dashboard"), Grid(figures), text);
    }

    /// <summary>Reward components (mean ± std), KL, loss, completion length, zero-std fraction, gradient norm, time split, throughput.</summary>
    public static IReadOnlyList<Figure> Figures(IReadOnlyList<StepMetrics> steps)
    {
        double[] x = [.. steps.Select(s => (double)s.Step)];
        double[] Of(Func<StepMetrics, double> f) => [.. steps.Select(f)];
        var reward = new Figure("reward (mean ± std)", "step")
            .Band("reward", x, Of(s => s.Reward.Mean - s.Reward.Std), Of(s => s.Reward.Mean + s.Reward.Std), "rgba(9,105,218,0.15)")
            .Line("total", x, Of(s => s.Reward.Mean), "#0969da");
        int k = 0;
        foreach (var name in steps[0].Rewards.Keys)
            reward.Line(name, x, Of(s => s.Rewards[name].Mean), ComponentColors[k++ % ComponentColors.Length], dash: "dot");
        var time = new Figure("time per step (ms)", "step");
        foreach (var (name, color, ms) in Phases) time.Bars(name, x, Of(s => ms(s.Time)), color);
        return
        [
            reward,
            new Figure("KL to the reference", "step").Line("kl", x, Of(s => s.Kl ?? double.NaN), "#8250df", markers: steps.Count < 30),
            new Figure("loss", "step").Line("loss", x, Of(s => s.Loss), "#cf222e", markers: steps.Count < 30),
            new Figure("completion length (tokens)", "step").Line("length", x, Of(s => s.CompletionLength), "#1b7c83", markers: steps.Count < 30),
            new Figure("zero-std groups (no signal)", "step").Line("zero-std", x, Of(s => s.FractionZeroStdGroups), "#bf8700", markers: steps.Count < 30).YRange(0, 1),
            new Figure("gradient norm (before clipping)", "step").Line("grad norm", x, Of(s => s.GradNorm), "#e16f24", markers: steps.Count < 30),
            time,
            new Figure("generated tokens / s", "step").Line("tokens/s", x, Of(s => s.TokensPerSecond), "#1a7f37", markers: steps.Count < 30),
        ];
    }

    /// <summary>Figures side by side, four to a row, as one SVG.</summary>
    internal static string Grid(IReadOnlyList<Figure> figures, int perRow = 4)
    {
        if (figures.Count == 0) return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"24\"><text x=\"4\" y=\"16\" font-family=\"sans-serif\" font-size=\"12\">no steps yet</text></svg>";
        const int w = 384, h = 254;
        int rows = (figures.Count + perRow - 1) / perRow;
        var sb = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Math.Min(perRow, figures.Count) * w}\" height=\"{rows * h}\">");
        for (int i = 0; i < figures.Count; i++)
            sb.Append($"<g transform=\"translate({i % perRow * w},{i / perRow * h})\">{FigureSvg.Render(figures[i])}</g>");
        return sb.Append("</svg>").ToString();
    }

    /// <summary>One prompt's completions across steps: its rewards per step, and what it answered each time.</summary>
    public static View PromptHistory(IEnumerable<EpisodeRow> rows, string sampleId)
    {
        var mine = rows.Where(r => r.SampleId == sampleId).ToList();
        if (mine.Count == 0) throw new ArgumentException($"no completions of '{sampleId}' in these episodes (the prompt may not have been drawn yet)", nameof(sampleId));
        var steps = mine.GroupBy(r => r.Step).OrderBy(g => g.Key).ToList();
        double[] x = [.. steps.Select(g => (double)g.Key)];
        var figure = new Figure($"rewards of {sampleId}", "step")
            .Band("range", x, [.. steps.Select(g => g.Min(r => r.Reward))], [.. steps.Select(g => g.Max(r => r.Reward))], "rgba(26,127,55,0.15)")
            .Line("mean", x, [.. steps.Select(g => g.Average(r => r.Reward))], "#1a7f37", markers: true);
        var html = new StringBuilder($"<h4>{E(sampleId)}: {mine.Count} completions over {steps.Count} step(s)</h4>").Append(Chart.Html(figure));
        html.Append(Table(["step", "#", "reward", "advantage", "<span class=l>answer</span>"], steps.SelectMany(g => g.OrderByDescending(r => r.Reward).Select(r => new[]
        {
            r.Step.ToString(), r.Index.ToString(), N(r.Reward), Signed(r.Advantage),
            $"<td class=l><code>{E(Truncate(Rewards.Parsing.Answers.Blocks(r.Text).Answer ?? r.Text, 120))}</code></td>",
        }))));
        return new View(Root(html.ToString(), "history"), FigureSvg.Render(figure), $"{sampleId}: {mine.Count} completions over {steps.Count} steps");
    }

    static string Truncate(string s, int n) => s.Length <= n ? s : s[..n] + "…";

    internal static string Duration(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours} h {t.Minutes} min"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes} min {t.Seconds} s" : $"{t.TotalSeconds:0.0} s";
}
