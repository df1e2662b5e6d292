using System.Text;
using VisualRft.Geometry;
using VisualRft.Grpo;
using VisualRft.Interop;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>
/// A run from another engine (<see cref="Rollouts.Rescore"/>), with the views of our own runs: what matched and where the
/// engine's score and ours disagree, reward curves per component (ours, and the engine's score), the group gallery of
/// each step (boxes over the image, reward cards; <see cref="RolloutViews"/>), one prompt followed across steps
/// (<see cref="TrainingViews.PromptHistory"/>), and a second run beside it.
/// </summary>
public static class ImportViews
{
    static readonly string[] Colors = ["#0969da", "#8250df", "#1a7f37", "#bf8700", "#cf222e"];

    /// <summary>The whole report; <paramref name="maxGroups"/> bounds the gallery (groups past it are counted, not drawn).</summary>
    public static View Run(RescoredRun run, RescoredRun? other = null, CoordinateFrame answerFrame = CoordinateFrame.Normalized1000, int maxGroups = 64)
    {
        var html = new StringBuilder($"<h3>{E(run.Run.Name)} ({run.Run.Format}): {run.Run.Rollouts.Count} logged completions, "
            + $"{run.Rollouts.Count} rejoined with their sample, {run.Unmatched.Count} not</h3>");
        html.Append(Summary(run));
        var figures = new List<Figure> { Curves(run) };
        if (other is not null) figures.Add(SideBySide(run, other));
        if (run.Run.Metrics.Count > 0) figures.Add(Metrics(run.Run));
        html.Append("<div class=row>");
        foreach (var f in figures) html.Append(Chart.Html(f));
        html.Append("</div>");
        if (other is not null) html.Append($"<h4>beside {E(other.Run.Name)} ({other.Run.Format})</h4>").Append(Summary(other));

        var groups = run.Rollouts.GroupBy(r => (r.Logged.Step, r.Sample.Id)).OrderBy(g => g.Key.Step).ThenBy(g => g.Key.Id).ToList();
        var svgs = new List<string>();
        html.Append($"<h4>groups: {groups.Count} (step × prompt)</h4>");
        foreach (var g in groups.Take(maxGroups))
        {
            var items = g.ToList();
            html.Append($"<h4>step {g.Key.Step}</h4>");
            var reward = TaskRewardOf(run, items[0]);
            if (items.Count >= 2)
            {
                // the rollout view of our own runs (it needs a group: its statistics divide by the group's spread)
                var view = Render.Of(RolloutGroup.FromTexts(items[0].Sample, [.. items.Select(i => i.Logged.Completion)], reward, answerFrame).Score(reward));
                html.Append(view.Html);
                svgs.Add(view.Svg);
            }
            else
            {
                var (one, svg) = Single(items[0], answerFrame, reward.Preset);
                html.Append(one);
                svgs.Add(svg);
            }
            html.Append(EngineLine(items));
        }
        if (groups.Count > maxGroups) html.Append($"<div class=muted>{groups.Count - maxGroups} more groups not drawn (maxGroups {maxGroups})</div>");

        var followed = run.Rollouts.GroupBy(r => r.Sample.Id).OrderByDescending(g => g.Select(r => r.Logged.Step).Distinct().Count()).FirstOrDefault();
        if (followed is not null)
            html.Append(TrainingViews.PromptHistory(Rows(run), followed.Key).Html);
        var text = $"{run.Run.Name}: {run.Rollouts.Count} rescored, {run.Disagreements.Count} disagree with the engine, {run.Unmatched.Count} unmatched";
        return new View(Root(html.ToString(), "imported"), RolloutViews.Stack(svgs.Count > 0 ? svgs : [FigureSvg.Render(figures[0])]), text);
    }

    /// <summary>One completion alone (EasyR1 and verl log one per prompt at validation): its boxes over the ground
    /// truth, its components and why.</summary>
    static (string Html, string Svg) Single(RescoredRollout r, CoordinateFrame answerFrame, Rewards.RewardPreset preset)
    {
        var size = new ImageSize(r.Sample.Width, r.Sample.Height);
        var reading = RewardViews.Read(r.Ours, r.Sample);
        var svg = Overlay.Svg(r.Sample.Image, SampleViews.Truth(r.Sample).Concat(RewardViews.Predicted(reading, new ImageFrames(size, size), answerFrame)), 320);
        return ($"<div class=row><div>{svg}</div><div style=\"flex:1;min-width:240px\"><div>{E(r.Sample.Id)} · reward <b>{N(r.Ours.Total)}</b> · "
            + string.Join(" ", r.Ours.Components.Select(c => $"{E(c.Name)} <b>{N(c.Value)}</b>")) + "</div>"
            + $"<pre>{E(r.Logged.Completion)}</pre><details><summary>why this reward</summary>{RewardViews.Explain(r.Ours, r.Logged.Completion, r.Sample, preset)}</details></div></div>", svg);
    }

    static Rewards.TaskReward TaskRewardOf(RescoredRun run, RescoredRollout r) =>
        r.Sample.Task == run.Reward.Task ? run.Reward : Rewards.TaskReward.Create(r.Sample.Task, run.Reward.Preset);

    static string EngineLine(IReadOnlyList<RescoredRollout> items) =>
        "<div class=muted>engine's score per completion: " + string.Join(", ", items.Select((r, i) =>
            $"#{i} {(r.Logged.EngineScore is { } s ? N(s) : "—")}{(r.Agrees == false ? $" <span class=bad>≠ ours {N(r.Ours.Total)}</span>" : "")}")) + "</div>";

    /// <summary>The rescored completions as episode rows (our reward; the engine's advantage where it logged one).</summary>
    public static IEnumerable<EpisodeRow> Rows(RescoredRun run) => run.Rollouts.Select((r, i) => new EpisodeRow(r.Logged.Step, r.Sample.Id, i,
        r.Logged.Completion, 0, true, r.Ours.Total, r.Ours.Components.ToDictionary(c => c.Name, c => c.Value), r.Ours.Failure?.ToString(),
        r.Logged.EngineValues.TryGetValue("advantage", out var a) ? (float)a : float.NaN));

    static string Summary(RescoredRun run)
    {
        var sb = new StringBuilder();
        var disagree = run.Disagreements;
        int compared = run.Rollouts.Count(r => r.Agrees is not null);
        sb.Append($"<div>engine's score and ours: {compared - disagree.Count} of {compared} agree"
            + (disagree.Count > 0 ? $", <span class=bad>{disagree.Count} disagree</span>" : "") + "</div>");
        if (disagree.Count > 0)
            sb.Append(Table(["step", "sample", "engine", "ours", "<span class=l>components</span>", "<span class=l>answer</span>"], disagree.Take(50).Select(r => new[]
            {
                r.Logged.Step.ToString(), E(r.Sample.Id), N(r.Logged.EngineScore ?? double.NaN), N(r.Ours.Total),
                $"<td class=l>{E(string.Join(", ", r.Ours.Components.Select(c => $"{c.Name} {N(c.Value)}")))}</td>",
                $"<td class=l><code>{E(Cut(Rewards.Parsing.Answers.Blocks(r.Logged.Completion).Answer ?? r.Logged.Completion, 100))}</code></td>",
            })));
        if (run.Unmatched.Count > 0)
            sb.Append($"<details><summary class=bad>{run.Unmatched.Count} completions matched no sample</summary><ul>"
                + string.Concat(run.Unmatched.Take(20).Select(u => $"<li>step {u.Rollout.Step}: {E(u.Why)} — <code>{E(Cut(u.Rollout.Prompt, 80))}</code></li>")) + "</ul></details>");
        return sb.ToString();
    }

    static string Cut(string s, int n) => s.Length <= n ? s : s[..n] + "…";

    /// <summary>Mean of each of our components and of our total per step, and the engine's score.</summary>
    public static Figure Curves(RescoredRun run)
    {
        var steps = run.Rollouts.GroupBy(r => r.Logged.Step).OrderBy(g => g.Key).ToList();
        double[] x = [.. steps.Select(g => (double)g.Key)];
        var f = new Figure("reward per step (mean)", "step");
        f.Line("ours: total", x, [.. steps.Select(g => Mean(g.Select(r => r.Ours.Total)))], Colors[0], markers: true);
        int k = 1;
        foreach (var c in run.Reward.Components)
            f.Line("ours: " + c.Name, x, [.. steps.Select(g => Mean(g.Where(r => r.Sample.Task == run.Reward.Task).Select(r => r.Ours[c.Name])))], Colors[k++ % Colors.Length], dash: "dot");
        if (run.Rollouts.Any(r => r.Logged.EngineScore is not null))
            f.Line("engine: score", x, [.. steps.Select(g => Mean(g.Where(r => r.Logged.EngineScore is not null).Select(r => r.Logged.EngineScore!.Value)))], "#57606a", dash: "dash");
        return f;
    }

    static Figure SideBySide(RescoredRun a, RescoredRun b)
    {
        var f = new Figure("our total reward per step, two runs", "step");
        foreach (var (run, color) in new[] { (a, Colors[0]), (b, Colors[3]) })
        {
            var steps = run.Rollouts.GroupBy(r => r.Logged.Step).OrderBy(g => g.Key).ToList();
            f.Line(run.Run.Name, [.. steps.Select(g => (double)g.Key)], [.. steps.Select(g => Mean(g.Select(r => r.Ours.Total)))], color, markers: true);
        }
        return f;
    }

    static Figure Metrics(LoggedRun run)
    {
        var f = new Figure("the engine's logged reward metrics", "step");
        double[] x = [.. run.Metrics.Select(m => (double)m.Step)];
        int k = 0;
        foreach (var key in run.Metrics.SelectMany(m => m.Values.Keys).Distinct().Where(key => key.Contains("reward", StringComparison.OrdinalIgnoreCase)).Take(6))
            f.Line(key, x, [.. run.Metrics.Select(m => m.Values.TryGetValue(key, out var v) ? v : double.NaN)], Colors[k++ % Colors.Length], markers: true);
        return f;
    }

    static double Mean(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        return finite.Count == 0 ? double.NaN : finite.Average();
    }

    /// <summary>A self-contained HTML page (plotly.js inlined) that opens offline, like <c>vrft run</c>'s report.</summary>
    public static string Page(View view, string title) =>
        $"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{E(title)}</title>{PlotlyJs.ScriptTag}</head><body>{view.Html}</body></html>\n";
}
