using System.Text;
using System.Text.Json.Nodes;
using VisualRft.Evaluation;
using VisualRft.Experiments;
using VisualRft.TinyModel;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>Views of the experiments: the quickstart's result over seeds, the learnability check, the tiny model's card.</summary>
public static class ExperimentViews
{
    static readonly (string Model, string Color)[] Models = [("base", "#8c959f"), ("+SFT", "#bf8700"), ("+Visual-RFT", "#0969da")];

    /// <summary>
    /// A chart of one metric per model and seed: a bar at the mean over seeds, a dot for each seed, so that a reader sees
    /// whether the gap between two methods is larger than the spread of either.
    /// </summary>
    public static Figure PerSeed(string title, string metric, IReadOnlyList<(string Model, IReadOnlyList<double> Values)> models)
    {
        var figure = new Figure(title, "", metric, width: 420);
        double[] x = [.. Enumerable.Range(0, models.Count).Select(i => (double)i)];
        figure.Bars("mean over seeds", x, [.. models.Select(m => m.Values.Count == 0 ? double.NaN : m.Values.Average())], "#d0d7de", stack: false);
        for (int i = 0; i < models.Count; i++)
        {
            var color = Models.FirstOrDefault(m => m.Model == models[i].Model).Color ?? "#0969da";
            figure.Points(models[i].Model, [.. models[i].Values.Select(_ => (double)i)], models[i].Values, color);
        }
        figure.Layout["xaxis"]!["tickvals"] = new JsonArray([.. x.Select(v => (JsonNode?)JsonValue.Create(v))]);
        figure.Layout["xaxis"]!["ticktext"] = new JsonArray([.. models.Select(m => (JsonNode?)JsonValue.Create(m.Model))]);
        return figure;
    }

    /// <summary>The quickstart's result: mean ± sd per model, Δ rows, each seed, and held-out mAP and reward per seed.</summary>
    public static View FewShot(FewShotDetectionResult r)
    {
        var names = r.Base.Metrics.Keys.ToList();
        var summary = r.Summary;
        string Digits(string n) => n is "mAP" or "AP50" ? "F1" : n is "P@0.5" or "R@0.5" ? "F2" : "F3";
        var rows = new[] { "base", "+SFT", "+Visual-RFT" }.Select(m => (IEnumerable<string>)[$"<td class=l><b>{E(m)}</b></td>", .. names.Select(n => E(summary[m][n].Format(Digits(n))))]).ToList();
        var delta = names.Select(n => MeanSd.Of([.. r.Seeds.Select(s => s.VisualRft.Metrics[n] - r.Base.Metrics[n])])).ToList();
        var vsSft = names.Select(n => MeanSd.Of([.. r.Seeds.Select(s => s.VisualRft.Metrics[n] - s.Sft.Metrics[n])])).ToList();
        string Cell(MeanSd m, string digits) => $"<td style=\"color:{(m.Mean > 0 ? "#1a7f37" : m.Mean < 0 ? "#cf222e" : "#656d76")}\"><i>{(m.Mean >= 0 ? "+" : "")}{E(m.Format(digits))}</i></td>";
        rows.Add([$"<td class=l>Δ Visual-RFT − base</td>", .. names.Select((n, i) => Cell(delta[i], Digits(n)))]);
        rows.Add([$"<td class=l>Δ Visual-RFT − SFT</td>", .. names.Select((n, i) => Cell(vsSft[i], Digits(n)))]);
        var split = r.Options.HeldOut == HeldOutSplit.Test ? "held-out test" : "validation";
        var html = new StringBuilder($"<h4>Few-shot detection: {E(r.Options.Dataset)}, {r.Options.Shots}-shot</h4>")
            .Append($"<div class=muted>{r.TrainSamples} training and {r.HeldOutSamples} {split} samples; {r.Seeds.Count} seed{(r.Seeds.Count == 1 ? "" : "s")} "
                + $"({string.Join(", ", r.Seeds.Select(s => s.Seed))}); ± = sd over seeds; the base model is evaluated once</div>")
            .Append(Table(["<span class=l>model</span>", .. names.Select(E)], rows));
        var charts = new StringBuilder("<div class=row>");
        foreach (var (metric, pick) in new (string, Func<EvaluationSummary, double>)[] { ("mAP", e => e.MeanAp), ("reward", e => e.Reward) })
            charts.Append(Chart.Html(PerSeed($"held-out {metric} per seed", metric,
                [("base", [pick(r.Base)]), ("+SFT", [.. r.Seeds.Select(s => pick(s.Sft))]), ("+Visual-RFT", [.. r.Seeds.Select(s => pick(s.VisualRft))])])));
        html.Append(charts.Append("</div>"));
        var m = summary["+Visual-RFT"]["mAP"];
        var text = $"few-shot detection ({r.Seeds.Count} seeds): mAP base {summary["base"]["mAP"].Format()}, +SFT {summary["+SFT"]["mAP"].Format()}, +Visual-RFT {m.Format()}";
        return new View(Root(html.ToString(), "few-shot"),
            EvaluationViews.SvgTable(["model", .. names], new[] { "base", "+SFT", "+Visual-RFT" }.Select(k => (IReadOnlyList<string>)[k, .. names.Select(n => summary[k][n].Format(Digits(n)))])),
            text);
    }

    /// <summary>The learnability check: the verdict, the rates with what each means, and the prompts with and without signal.</summary>
    public static View Learnability(LearnabilityReport r)
    {
        var color = r.Learnable ? "#1a7f37" : "#cf222e";
        var rates = new (string Name, string Value, string Meaning)[]
        {
            ("greedy hit", N(r.GreedyHit, 3), "share of prompts whose greedy answer is right"),
            ("sampled pass@1", N(r.Pass1, 3), $"share of the {r.G} sampled answers that are right"),
            ($"pass@{r.G}", N(r.PassG, 3), $"share of prompts with a right answer among {r.G}: what GRPO can amplify"),
            ("zero-std groups", N(r.ZeroStdShare, 3), "share of prompts whose rewards are all equal: zero advantages, no signal"),
            ("target hits", N(r.TargetHitRate, 3), "sampled answers with a box on a target"),
            ("distractor hits", N(r.DistractorHitRate, 3), "sampled answers with a box on a distractor"),
            ("format failures", N(r.FormatFailureRate, 3), "sampled answers with format reward 0"),
            ("mean reward", N(r.RewardMean, 3), "of the sampled answers"),
        };
        var html = new StringBuilder($"<h4>Learnability check: {r.Prompts.Count} prompts × {r.G} samples</h4>")
            .Append($"<div style=\"font-size:15px;color:{color};margin:4px 0\"><b>{(r.Learnable ? "✓" : "✗")} {E(r.Verdict)}</b></div>");
        foreach (var f in r.Findings) html.Append($"<div>• {E(f)}</div>");
        html.Append(Table(["<span class=l>measure</span>", "value", "<span class=l>what it says</span>"],
            rates.Select(x => (IEnumerable<string>)[$"<td class=l>{E(x.Name)}</td>", x.Value, $"<td class=l class=muted>{E(x.Meaning)}</td>"])));
        var figure = new Figure("hits per prompt (of G samples)", "hits", "prompts", width: 380);
        var counts = Enumerable.Range(0, r.G + 1).Select(k => (double)r.Prompts.Count(p => p.Hits == k)).ToList();
        figure.Bars("prompts", [.. Enumerable.Range(0, r.G + 1).Select(k => (double)k)], counts, "#0969da", stack: false);
        html.Append(Chart.Html(figure));
        html.Append("<details><summary>prompts</summary>")
            .Append(Table(["<span class=l>sample</span>", "greedy", "hits", "distractor", "format ✗", "reward mean", "std", "<span class=l>best answer</span>"],
                r.Prompts.Select(p => (IEnumerable<string>)[$"<td class=l>{E(p.SampleId)}</td>", p.GreedyHit ? "✓" : "·", $"{p.Hits}/{r.G}", $"{p.DistractorHits}", $"{p.FormatFailures}",
                    N(p.RewardMean, 3), p.ZeroStd ? "<td class=muted>0</td>" : N(p.RewardStd, 3), $"<td class=l><code>{E(p.Best.Length > 160 ? p.Best[..160] + "…" : p.Best)}</code></td>"])))
            .Append("</details>");
        return new View(Root(html.ToString(), "learnability"),
            EvaluationViews.SvgTable(["measure", "value"], rates.Select(x => (IReadOnlyList<string>)[x.Name, x.Value])),
            $"learnability: {r.Verdict}");
    }

    /// <summary>The tiny model's card: what it was trained on and what it has never seen.</summary>
    public static View Card(TinyModelCard c)
    {
        var html = new StringBuilder($"<h4>{E(c.Name)}</h4><div class=muted>{E(c.Summary)}</div>");
        html.Append(Table(["<span class=l>stage</span>", "steps", "<span class=l>data</span>"],
            c.Stages.Select(s => (IEnumerable<string>)[$"<td class=l>{E(s.Name)}</td>", $"{s.Steps}", $"<td class=l>{E(s.Data)}</td>"])));
        html.Append("<h5>Seen in pre-training</h5>");
        foreach (var (k, v) in c.Seen) html.Append($"<div><b>{E(k)}</b>: {E(string.Join(", ", v))}</div>");
        html.Append("<h5>Never seen labelled (the tables' test categories)</h5>");
        foreach (var (k, v) in c.Unseen) html.Append($"<div><b>{E(k)}</b>: {E(string.Join(", ", v))}</div>");
        html.Append("<h5>Failures on purpose (what a verifiable reward can fix)</h5>");
        foreach (var f in c.Failures) html.Append($"<div>• {E(f)}</div>");
        return new View(Root(html.ToString(), "model-card"),
            EvaluationViews.SvgTable(["seen", "never seen"], [[string.Join("; ", c.Seen.Keys), string.Join("; ", c.Unseen.Keys)]]),
            $"{c.Name}: {c.Summary}");
    }
}
