using System.Text;
using VisualRft.Grpo;
using VisualRft.Rewards;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>
/// A rollout group: per prompt, the image with every completion's boxes over the ground truth (coloured by matched IoU),
/// and one card per completion — parse status, think and answer text, reward components with their explanation,
/// advantage, its own overlay — sorted by reward, re-sortable by index or advantage.
/// </summary>
public static class RolloutViews
{
    public static View Rollout(RolloutGroup r) => Render(r.Score(), null, "rollout");
    public static View Scored(ScoredGroup s) => Render(s, null, "scored");
    public static View Batch(AdvantageBatch b) => Render(b.Scored, b, "advantages");

    static View Render(ScoredGroup s, AdvantageBatch? batch, string kind)
    {
        var r = s.Rollout;
        var html = new StringBuilder();
        var svgs = new List<string>();
        for (int p = 0; p < r.Samples.Count; p++)
        {
            var sample = r.Samples[p];
            var rows = r.Completions.Select((c, i) => (c, i)).Where(x => x.c.Prompt == p).ToList();
            var readings = rows.ToDictionary(x => x.i, x => RewardViews.Read(s.Rewards[x.i], sample));
            var all = SampleViews.Truth(sample).Concat(rows.SelectMany(x => RewardViews.Predicted(readings[x.i], r.Frames[p], r.AnswerFrame, x.c.Index)));
            var big = Overlay.Svg(sample.Image, all, 320);
            svgs.Add(big);
            var totals = rows.Select(x => s.Rewards[x.i].Total).ToList();
            html.Append($"<h4>prompt {p + 1}: {E(sample.Id)}</h4><div class=row><div>{big}<div class=muted>ground truth in blue; completion boxes by matched IoU "
                + $"(<span style=\"color:{Overlay.IouColor(0.5001)}\">0.5</span> → <span style=\"color:{Overlay.IouColor(1)}\">1</span>, <span class=bad>unmatched</span>)</div>"
                + Stats(totals, batch, p) + (RewardViews.FrameWarning(sample) is { } warning ? $"<div class=bad>⚠ {E(warning)}</div>" : "") + "</div>");
            var id = NewId("rollout");
            html.Append($"<div><div>sort by <button onclick=\"vrftSort('{id}','reward')\">reward</button><button onclick=\"vrftSort('{id}','index')\">index</button>"
                + (batch is null ? "" : $"<button onclick=\"vrftSort('{id}','advantage')\">advantage</button>") + $"</div><div id=\"{id}\" class=row>");
            foreach (var (c, i) in rows.OrderByDescending(x => s.Rewards[x.i].Total).ThenBy(x => x.c.Index))
                html.Append(Card(c, s.Rewards[i], readings[i], r, sample, p, batch?.Advantages[i], s.Reward.Preset));
            html.Append("</div></div></div>");
        }
        html.Append(SortScript);
        var text = $"rollout of {r.Samples.Count} prompt(s) × G {r.G}, reward mean {N(s.Totals.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average())}"
            + (batch is null ? "" : $", zero-std groups {batch.ZeroStdGroups.Count(z => z)}/{batch.ZeroStdGroups.Length}");
        return new View(Root(html.ToString(), kind), Stack(svgs), text);
    }

    static string Stats(IReadOnlyList<double> totals, AdvantageBatch? batch, int p)
    {
        var finite = totals.Where(double.IsFinite).ToList();
        var mean = finite.DefaultIfEmpty(double.NaN).Average();
        var line = $"<div>reward mean {N(mean)}, min {N(finite.DefaultIfEmpty(double.NaN).Min())}, max {N(finite.DefaultIfEmpty(double.NaN).Max())}";
        if (batch is not null)
            line += $"; group std {N(batch.GroupStds[p])}" + (batch.ZeroStdGroups[p]
                ? " — <span class=bad>all rewards equal: advantage 0, only the KL term trains this prompt</span>" : "")
                + $"; A = (r − {N(batch.GroupMeans[p])}) / ({N(batch.GroupStds[p])} + 1e-4)";
        return line + "</div>";
    }

    static string Card(Completion c, RewardBreakdown reward, RewardViews.Reading reading, RolloutGroup r, Data.VisualSample sample, int p,
        float? advantage, RewardPreset preset)
    {
        var status = reward.Failure is { } f ? $"<span class=bad>✗ {E(f.Kind.ToString())}</span>" : "<span class=ok>✓ read</span>";
        var mini = Overlay.Svg(sample.Image, SampleViews.Truth(sample).Select(b => b with { Label = null })
            .Concat(RewardViews.Predicted(reading, r.Frames[p], r.AnswerFrame, labels: false)), 120);
        var sb = new StringBuilder($"<div class=card data-index=\"{c.Index}\" data-reward=\"{Html.F(double.IsFinite(reward.Total) ? reward.Total : -1e9)}\""
            + (advantage is { } a ? $" data-advantage=\"{Html.F(double.IsFinite(a) ? a : -1e9)}\"" : "") + " style=\"max-width:460px\">");
        sb.Append($"<div><b>#{c.Index}</b> · reward <b>{N(reward.Total)}</b>")
          .Append(advantage is { } adv ? $" · advantage <b style=\"color:{(adv >= 0 ? "#1a7f37" : "#cf222e")}\">{Signed(adv)}</b>" : "")
          .Append(c.Trace.Width == 0 ? "" : $" · {c.Tokens} tokens{(c.Finished ? "" : " <span class=bad>(cut off)</span>")}").Append($" · {status}</div>");
        sb.Append($"<div class=row><div>{mini}</div><div style=\"flex:1;min-width:200px\">")
          .Append(string.Join(" ", reward.Components.Select(x => $"{E(x.Name)} <b>{N(x.Value)}</b>")))
          .Append(c.Answer is { } ans ? $"<div class=muted>answer</div><pre>{E(ans)}</pre>" : $"<div class=muted>no &lt;answer&gt; block; text</div><pre>{E(c.Text)}</pre>")
          .Append(c.Think is { } think ? $"<details><summary>think ({think.Length} chars)</summary><pre>{E(think)}</pre></details>" : "")
          .Append($"<details><summary>why this reward</summary>{RewardViews.Explain(reward, c.Text, sample, preset)}</details>")
          .Append("</div></div></div>");
        return sb.ToString();
    }

    /// <summary>Several SVGs stacked vertically in one document.</summary>
    internal static string Stack(IReadOnlyList<string> svgs, int height = 330)
    {
        var sb = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"{svgs.Count * height}\">");
        for (int i = 0; i < svgs.Count; i++) sb.Append($"<g transform=\"translate(0,{i * height})\">{svgs[i]}</g>");
        return sb.Append("</svg>").ToString();
    }

    const string SortScript = """
<script type="text/javascript">
window.vrftSort = window.vrftSort || function (id, key) {
  var box = document.getElementById(id); if (!box) return;
  var cards = Array.prototype.slice.call(box.children);
  cards.sort(function (a, b) {
    if (key === 'index') return (+a.dataset.index) - (+b.dataset.index);
    return (+b.dataset[key]) - (+a.dataset[key]) || (+a.dataset.index) - (+b.dataset.index);
  });
  cards.forEach(function (c) { box.appendChild(c); });
};
</script>
""";
}
