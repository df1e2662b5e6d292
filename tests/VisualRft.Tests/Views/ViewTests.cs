using System.Text.RegularExpressions;
using System.Xml.Linq;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.Grpo;
using VisualRft.Rewards;
using VisualRft.Tests.Grpo;
using VisualRft.Views;

namespace VisualRft.Tests.Views;

/// <summary>
/// Every view from real records: its HTML carries the image, the boxes as SVG elements, the charts with their static
/// fallback; its SVG is a well-formed document; its text is one line. A tiny random policy makes the records in seconds.
/// </summary>
public class ViewTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    static int Count(string html, string pattern) => Regex.Matches(html, pattern).Count;

    static void WellFormed(View v)
    {
        var svg = XDocument.Parse(v.Svg);                                  // a standalone document, not a fragment
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        Assert.DoesNotContain('\n', v.Text);
        Assert.StartsWith("<div class=\"vrft vrft-", v.Html);
        Assert.DoesNotContain("http://", Regex.Replace(v.Html, "xmlns(:xlink)?=\"http://www.w3.org/[^\"]*\"", ""));   // nothing fetched
    }

    /// <summary>A detection completion that reads: one box on the sample's first ground truth, one far off.</summary>
    static string Answer(VisualSample s) =>
        $"<think>I see it.</think><answer>[{{'Position': [{s.Boxes1000[0].X1}, {s.Boxes1000[0].Y1}, {s.Boxes1000[0].X2}, {s.Boxes1000[0].Y2}], 'Confidence': 0.9}}, "
        + "{'Position': [0, 0, 10, 10], 'Confidence': 0.3}]</answer>";

    [Fact]
    public void A_sample_shows_its_image_and_ground_truth_boxes()
    {
        var s = fx.Data.Train[0];
        var v = Render.Of(s);
        WellFormed(v);
        Assert.Contains("<image href=\"data:image/png;base64,", v.Html);
        Assert.Equal(s.Boxes.Count, Count(v.Html, "class=\"vrft-box vrft-truth\""));
        Assert.Contains(s.Category, v.Html);
        Assert.Contains(s.Id, v.Text);
    }

    [Fact]
    public void An_image_shown_smaller_than_it_is_carries_the_pixels_it_is_shown_with()
    {
        var pixels = new byte[400 * 300 * 3];
        new Random(3).NextBytes(pixels);                       // noise: PNG cannot shrink it, so bytes follow pixels
        var image = new VisualRft.Imaging.RgbImage(400, 300, pixels);
        var svg = Overlay.Svg(image, [new OverlayBox(new VisualRft.Geometry.Box(10, 10, 200, 150), Overlay.TruthColor, "truth", "truth")], 100);
        var uri = Regex.Match(svg, "href=\"(data:image/png;base64,[^\"]+)\"").Groups[1].Value;
        Assert.Single(Regex.Matches(svg, "data:image/png"));   // the image once, not once per href attribute
        using var png = SixLabors.ImageSharp.Image.Load(Convert.FromBase64String(uri["data:image/png;base64,".Length..]));
        Assert.Equal((100, 75), (png.Width, png.Height));
        Assert.Contains("viewBox=\"0 0 400 300\"", svg);          // boxes stay in the image's own pixels
        Assert.Contains("width=\"190\"", svg);
        var full = Regex.Match(Overlay.Svg(image, [], 640), "base64,([^\"]+)\"").Groups[1].Value;
        using var big = SixLabors.ImageSharp.Image.Load(Convert.FromBase64String(full));
        Assert.Equal(400, big.Width);                          // a larger display scales up in the browser
        Assert.True(uri.Length * 8 < full.Length, $"{uri.Length} vs {full.Length} characters");
    }

    [Fact]
    public void A_dataset_shows_a_card_and_one_thumbnail_per_category()
    {
        var v = Render.Of(fx.Data);
        WellFormed(v);
        Assert.Contains("shapes-detection", v.Html);
        Assert.Equal(fx.Data.Train.Select(s => s.Category).Distinct().Count(), Count(v.Html, "<div class=card>"));
        Assert.Contains("8 train", v.Text);
    }

    [Fact]
    public void A_rollout_draws_every_read_box_coloured_by_its_match_and_explains_the_reward()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, VisualRft.Rewards.Rewards.Detection(), TinyTrainerFixture.Options, totalSteps: 2);
        var group = trainer.Rollout(fx.Data.Train[0]);
        // The random model writes no boxes: give two completions readable answers to see them drawn and matched.
        var sample = group.Samples[0];
        var completions = group.Completions.ToList();
        completions[0] = completions[0] with { Text = Answer(sample) };
        completions[1] = completions[1] with { Text = "[{'Position': [1, 2, 3]}]" };
        var edited = group with { Completions = completions };
        var batch = edited.Score().Advantages();
        var v = Render.Of(batch);
        WellFormed(v);
        Assert.Equal(4, Count(v.Html, "class=card data-index="));
        // big overlay: both predictions of completion 0; mini overlay of that card: the same two again
        Assert.Equal(4, Count(v.Html, "class=\"vrft-box vrft-prediction\""));
        Assert.Contains($"stroke=\"{Overlay.IouColor(1.0)}\"", v.Html);      // the exact box matched at IoU 1 (green)
        Assert.Contains("stroke=\"#cf222e\"", v.Html);                       // the far one is unmatched (red)
        Assert.Contains("iou = Σ matched IoU ÷ max(n_gt, n_pred)", v.Html);
        Assert.Contains("format ✗", v.Html);                                 // completion 1 has no tags
        Assert.Contains("data-advantage=", v.Html);
        Assert.Contains("vrftSort", v.Html);
        var ordered = Regex.Matches(v.Html, "data-index=\"(\\d+)\"").Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(0, ordered[0]);                                         // sorted by reward: the matched answer first
    }

    [Fact]
    public void Hand_written_answers_are_scored_and_drawn_and_a_solution_in_pixels_is_flagged()
    {
        var s = fx.Data.Train[0];
        var group = RolloutGroup.FromTexts(s, [Answer(s), "<think></think><answer></answer>"], VisualRft.Rewards.Rewards.Detection(RewardPreset.Strict));
        var v = Render.Of(group.Score().Advantages());
        WellFormed(v);
        Assert.Equal(4, Count(v.Html, "class=\"vrft-box vrft-prediction\""));
        Assert.DoesNotContain("⚠", v.Html);
        // The frame mix-up of anchors.md §B.2: a solution written in image pixels.
        var pixels = s with { Solution = "<answer>[" + string.Join(", ", s.Boxes.Select(b => $"{{'Position': [{b.X1}, {b.Y1}, {b.X2}, {b.Y2}], 'Confidence': 1}}")) + "]</answer>" };
        var mixed = Render.Of(RolloutGroup.FromTexts(pixels, [Answer(s), Answer(s)], VisualRft.Rewards.Rewards.Detection()));
        Assert.Contains("they are in image pixels", mixed.Html);
        Assert.Throws<ArgumentException>(() => RolloutGroup.FromTexts(s, ["one"], VisualRft.Rewards.Rewards.Detection()));
    }

    [Fact]
    public void An_update_shows_its_numbers()
    {
        var u = new UpdateResult(0.125, 0.002, 0, 0.75, 1e-4, false, null, 120, 4, 3, [], null);
        var v = Render.Of(u);
        WellFormed(v);
        Assert.Contains("0.125", v.Html);
        Assert.Contains("optimizer step 3", v.Text);
    }

    [Fact]
    public void Paper_tables_and_their_comparisons_show_rows_deltas_and_a_chart()
    {
        foreach (var t in VisualRft.Experiments.PaperTables.All)
        {
            var v = Render.Of(t);
            WellFormed(v);
            Assert.Equal(t.Rows.Count, Count(v.Html, "<tr><td class=l>"));
        }
        Assert.Contains("⚠", Render.Of(VisualRft.Experiments.PaperTables.Table4).Html);    // its printed Δ that does not add up
        var paper = VisualRft.Experiments.PaperTables.Table3;
        var measured = VisualRft.Experiments.TableComparison.Rows([0.8, 1, 2, 3, 4, 5, 6, 7, 8], [2.7, 1, 2, 3, 4, 5, 6, 7, 8], [4.2, 2, 2, 3, 4, 5, 6, 7, 8]);
        var c = new VisualRft.Experiments.TableComparison(paper, paper.RowsOf("Qwen2-VL-2B", "4-shot"), "tiny", paper.Columns, measured,
            new Dictionary<string, string> { ["steps"] = "120" }, ["an analogue"], 60);
        var view = Render.Of(c);
        WellFormed(view);
        Assert.Contains("<i>+3.4</i>", view.Html);
        Assert.Contains("class=\"vrft-plotly\"", view.Html);
        Assert.Contains("Δ +3.4", view.Text);

        // Table 8's analogue has 8 per-class columns against the paper's 13: every row still spans the whole header.
        var t8 = VisualRft.Experiments.PaperTables.Table8;
        var narrow = VisualRft.Experiments.TableComparison.Rows([1.5, 1, 2], [0.9, 1, 2], [0.8, 1, 2]);
        var unequal = new VisualRft.Experiments.TableComparison(t8, t8.RowsOf("Qwen2-VL-2B"), "tiny", ["mAP", "pink circle", "cyan star"], narrow,
            new Dictionary<string, string> { ["steps"] = "120" }, [], 60);
        var html = Render.Of(unequal).Html;
        WellFormed(Render.Of(unequal));
        var widths = System.Text.RegularExpressions.Regex.Matches(html[..html.IndexOf("</table>")], "<tr>(.*?)</tr>").Select(m => Count(m.Groups[1].Value, "<t")).Distinct().ToList();
        Assert.Equal([t8.Columns.Count + 1], widths);
        Assert.Contains("↔ –", html);
        Assert.All(unequal.ToMarkdown().Split('\n').Where(l => l.StartsWith('|')), l => Assert.Equal(t8.Columns.Count + 2, l.Count(ch => ch == '|')));
    }

    [Fact]
    public void Format_problems_are_named()
    {
        Assert.Empty(RewardViews.FormatProblems("<think>a</think><answer>b</answer>", RewardPreset.VisualRft));
        Assert.Contains("whitespace after </answer> (visual-rft matches the raw completion)", RewardViews.FormatProblems("<think>a</think><answer>b</answer>\n", RewardPreset.VisualRft));
        Assert.Contains("no </answer> (cut off by the length limit?)", RewardViews.FormatProblems("<think>a</think><answer>b", RewardPreset.Strict));
        Assert.Contains("no <think>", RewardViews.FormatProblems("<answer>b</answer>", RewardPreset.Strict));
        Assert.Equal(["the completion is empty"], RewardViews.FormatProblems("", RewardPreset.Strict));
    }

    [Fact]
    public void The_token_view_colours_every_token_and_strikes_out_padding()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2);
        var group = trainer.Rollout(fx.Data.Train[0]);
        var batch = group.Score().Advantages();
        foreach (var by in Enum.GetValues<TokenColor>())
        {
            var v = by == TokenColor.Advantage ? Render.Tokens(batch) : Render.Tokens(group, by);
            WellFormed(v);
            Assert.Equal(group.Completions.Sum(c => c.Tokens), Count(v.Html, "<span class=tok style="));
            Assert.Equal(group.Completions.Count(c => c.Tokens < c.Trace.Width), Count(v.Html, "class=\"tok masked\""));
            Assert.Contains("logp ", v.Html);
        }
        Assert.Throws<ArgumentException>(() => TokenViews.Tokens(group, TokenColor.Advantage));
    }

    [Fact]
    public void A_step_the_dashboard_and_a_prompt_history_draw_charts_with_static_fallbacks()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 3);
        var episodes = trainer.Train().ToList();
        var step = Render.Of(episodes[^1]);
        WellFormed(step);
        Assert.Contains("time split", step.Html);

        var dashboard = Render.Of(new TrainingDashboard([.. episodes.Select(e => e.Metrics)], 3, 3, TimeSpan.FromSeconds(2), "done"));
        WellFormed(dashboard);
        var charts = Count(dashboard.Html, "class=\"vrft-plotly\"");
        Assert.Equal(8, charts);
        Assert.Equal(charts, Count(dashboard.Html, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"vrft-figure\""));
        Assert.Equal(charts, Count(dashboard.Html, "window.Plotly.newPlot"));
        Assert.Equal(charts, Count(dashboard.Svg, "class=\"vrft-figure\""));
        Assert.Contains("step 3 of 3", dashboard.Html);

        var history = Render.History(episodes, episodes[0].Rows.First().SampleId);
        WellFormed(history);
        Assert.Contains("class=\"vrft-plotly\"", history.Html);
        Assert.Throws<ArgumentException>(() => Render.History(episodes, "no such prompt"));
    }

    [Fact]
    public void Evaluations_side_by_side_have_delta_rows()
    {
        var samples = fx.Data.Test.Take(2).ToList();
        var reward = VisualRft.Rewards.Rewards.Detection();
        EvaluationReport Report(string label, Func<VisualSample, string> answer)
        {
            var scored = samples.Select(s => new EvaluatedSample(s, answer(s), reward.Score(answer(s), s.Solution))).ToList();
            return new EvaluationReport(label, scored, RewardStat.OfComponents(reward.Components.ToDictionary(c => c.Name, c => scored.Select(e => e.Reward[c.Name]).ToArray())),
                RewardStat.Of(scored.Select(e => e.Reward.Total).ToArray()), null, null, null, 1);
        }
        var base_ = Report("base", _ => "no idea");
        var tuned = Report("tuned", Answer);
        var v = Render.Of([base_, tuned]);
        WellFormed(v);
        Assert.Contains("<i>Δ tuned</i>", v.Html);
        Assert.Contains("color:#1a7f37\">+", v.Html);    // the tuned model's gain, in green
        var one = Render.Of(tuned);
        WellFormed(one);
        Assert.Equal(2, Count(one.Html, "class=\"vrft-box vrft-prediction\"") / samples.Count);
    }

    [Fact]
    public void Summaries_of_the_policy_and_trainer_replace_object_dumps()
    {
        using var policy = fx.NewPolicy();
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2);
        var p = Render.Of(policy);
        WellFormed(p);
        Assert.Contains("Qwen2-VL", p.Text);
        Assert.Contains("parameters", p.Html);
        var t = Render.Of(trainer);
        WellFormed(t);
        Assert.Contains("LearningRate = 0.01", t.Html);    // what differs from the paper's preset
        Assert.Contains("NumGenerations = 4", t.Text);
        Assert.True(p.Html.Length < 20_000 && t.Html.Length < 20_000);
    }

    [Fact]
    public void A_figure_renders_lines_bands_and_stacked_bars_statically()
    {
        var f = new Figure("t", "step").Band("b", [1, 2, 3], [0, 0, 1], [1, 2, 3], "rgba(0,0,0,0.1)").Line("l", [1, 2, 3], [0.5, double.NaN, 2], "#000")
            .Bars("a", [1, 2], [1, 2], "#f00").Bars("b", [1, 2], [3, 4], "#0f0");
        var svg = FigureSvg.Render(f);
        XDocument.Parse(svg);
        Assert.Equal(1, Count(svg, "class=\"vrft-band\""));
        Assert.Equal(4, Count(svg, "class=\"vrft-bar\""));
        Assert.Contains("\"y\":[0.5,null,2]", f.ToJson());   // NaN is a gap in plotly's JSON
        Assert.Equal([0, 0.5, 1, 1.5, 2], FigureSvg.Ticks(0, 2, 5));
        var wrapped = Figure.FromJson("""{"data":[{"type":"heatmap","z":[[1,2]]},{"type":"scatter","x":[1,2],"y":[3,4]}],"layout":{"title":"plotly.NET"}}""");
        var drawn = FigureSvg.Render(wrapped);
        Assert.Contains("heatmap trace(s): interactive view only", drawn);
        Assert.Contains("class=\"vrft-line\"", drawn);
        Assert.Equal("plotly.NET", wrapped.Title);
    }
}
