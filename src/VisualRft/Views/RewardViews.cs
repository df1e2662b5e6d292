using System.Text;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>
/// A reward that explains itself: which predicted box matched which ground-truth box at what IoU and how the IoU and
/// confidence terms came out (detection), what the answer was compared with (classification), the GIoU (grounding), and
/// why the format check failed.
/// </summary>
public static class RewardViews
{
    /// <summary>The predicted boxes of a completion as the reward read them, in the answer's frame (after duplicate removal
    /// for detection), and how the reward's §4.4 matching paired them with the ground truth.</summary>
    public sealed record Reading(IReadOnlyList<DetectionBox> Boxes, IReadOnlyList<BoxMatch> Matches);

    /// <summary>
    /// The ground-truth boxes as the reward sees them: read from the sample's solution text (what the reward compares
    /// with), not from its pixel boxes — so a solution written in the wrong frame shows up as what it is.
    /// </summary>
    public static IReadOnlyList<Box> SolutionBoxes(VisualSample sample) => sample.Task switch
    {
        VisualTask.Detection => [.. StrictDetection.ParseSolution(sample.Solution).Boxes.Select(b => b.Position.Normalized())],
        VisualTask.Grounding => Answers.ParseGrounding(sample.Solution, RewardPreset.Strict).Box is { } b ? [b.Normalized()] : [],
        _ => [],
    };

    /// <summary>
    /// Why the solution's boxes differ from the sample's ground truth in the 0–1000 frame, or null when they agree. The
    /// commonest cause of a reward stuck at zero (anchors.md §B.2): solutions written in pixels, or in another frame.
    /// </summary>
    public static string? FrameWarning(VisualSample sample)
    {
        var solution = SolutionBoxes(sample);
        var expected = sample.Boxes1000.Select(b => b.ToBox()).ToList();
        if (solution.Count == expected.Count && solution.Zip(expected).All(p => Math.Abs(p.First.X1 - p.Second.X1) <= 2 && Math.Abs(p.First.Y1 - p.Second.Y1) <= 2
            && Math.Abs(p.First.X2 - p.Second.X2) <= 2 && Math.Abs(p.First.Y2 - p.Second.Y2) <= 2)) return null;
        var inPixels = solution.Count == sample.Boxes.Count && solution.Zip(sample.Boxes).All(p => Math.Abs(p.First.X1 - p.Second.X1) <= 2 && Math.Abs(p.First.Y2 - p.Second.Y2) <= 2);
        return $"the solution's boxes {string.Join(" ", solution)} are not the ground truth in the 0–1000 frame {string.Join(" ", expected)}"
            + (inPixels ? " — they are in image pixels: convert them with ImageFrames.Convert (the answers are in 0–1000)" : "");
    }

    /// <summary>Detection: the boxes read and the reward's matching of them; grounding: the one box and its IoU.</summary>
    public static Reading Read(RewardBreakdown r, VisualSample sample)
    {
        switch (r.Answer)
        {
            case DetectionAnswer d:
                return new Reading(d.Boxes, r.Matches);
            case GroundingAnswer { Box: { } box }:
                var truth = SolutionBoxes(sample);
                var iou = truth.Count > 0 ? Box.IoU(truth[0], box.Normalized()) : 0;
                return new Reading([new DetectionBox(box, double.NaN)], [new BoxMatch(0, iou > 0 ? 0 : null, iou)]);
            default:
                return new Reading([], []);
        }
    }

    /// <summary>Boxes to draw for one completion: each colour-coded by the IoU of its match (red: unmatched, or not
    /// matched at all because the reward failed first).</summary>
    public static IEnumerable<OverlayBox> Predicted(Reading reading, ImageFrames frames, CoordinateFrame frame, int? completion = null, bool labels = true)
    {
        var matches = reading.Matches.ToDictionary(m => m.Prediction);
        for (int i = 0; i < reading.Boxes.Count; i++)
        {
            var b = reading.Boxes[i];
            var m = matches.GetValueOrDefault(i);
            var pixels = frames.Convert(b.Position, frame, CoordinateFrame.OriginalPixels);
            var iou = m is null ? "" : $"IoU {N(m.Iou, 2)}";
            var label = !labels ? null : completion is { } c ? $"#{c}" : double.IsNaN(b.Confidence) ? iou : $"c {N(b.Confidence, 2)}" + (m is null ? "" : $" · {iou}");
            yield return new OverlayBox(pixels, Overlay.IouColor(m is { Matched: true } ? m.Iou : null), label, "prediction", Tag: completion);
        }
    }

    /// <summary>The explanation as HTML (a table and the formulas with their numbers).</summary>
    public static string Explain(RewardBreakdown r, string completion, VisualSample sample, RewardPreset preset)
    {
        var sb = new StringBuilder();
        sb.Append(Table(r.Components.Select(c => E(c.Name)).Append("total"),
            [[.. r.Components.Select(c => N(c.Value)), $"<b>{N(r.Total)}</b>"]]));
        var reading = Read(r, sample);
        switch (r.Answer)
        {
            case DetectionAnswer:
                sb.Append(DetectionTerms(r, reading, sample));
                break;
            case GroundingAnswer g:
                sb.Append(g.Box is { } box
                    ? $"<div>answer box {E(box.ToString())} vs the solution's {E(string.Join(" ", SolutionBoxes(sample)))} (0–1000): giou = GIoU + 1 = {N(r["giou"])}</div>"
                    : "<div>no <code>(x1,y1),(x2,y2)</code> box in the answer: giou 0</div>");
                break;
            case ClassificationAnswer c:
                sb.Append($"<div>answer <code>{E(c.AnswerText)}</code> → normalised <code>{E(c.Normalized)}</code>; ground truth <code>{E(sample.Category)}</code> — ")
                  .Append(preset == RewardPreset.VisualRft ? "the visual-rft rule accepts either one containing the other (spec §4.8)" : "the strict rule needs an exact match")
                  .Append("</div>");
                break;
        }
        if (r.Failure is { } f) sb.Append($"<div class=bad>{E(f.Kind.ToString())}: {E(f.Message)}</div>");
        var format = FormatProblems(completion, preset);
        sb.Append(format.Count == 0
            ? "<div class=ok>format ✓</div>"
            : $"<div class=bad>format ✗ — {string.Join("; ", format.Select(E))}</div>");
        return sb.ToString();
    }

    /// <summary>The reward's matching, row by row, and its two terms with the numbers they came from.</summary>
    static string DetectionTerms(RewardBreakdown r, Reading reading, VisualSample sample)
    {
        var truth = SolutionBoxes(sample);
        if (reading.Boxes.Count == 0) return $"<div>no boxes read; {truth.Count} ground-truth box(es)</div>";
        if (reading.Matches.Count == 0) return $"<div>{reading.Boxes.Count} box(es) read, none matched: the reward stopped before matching</div>";
        var rows = reading.Matches.Select(m =>
        {
            var b = reading.Boxes[m.Prediction];
            return new[]
            {
                $"#{m.Prediction + 1}", $"<td class=l><code>{E(b.Position.ToString())}</code></td>", N(b.Confidence, 2),
                m.Truth is { } t ? $"GT {t + 1}" + (t < truth.Count ? $" <code>{E(truth[t].ToString())}</code>" : "") : "<span class=bad>none</span>",
                $"<td style=\"color:{Overlay.IouColor(m.Matched ? m.Iou : null)}\">{N(m.Iou)}</td>",
                m.Matched ? $"c = {N(b.Confidence, 2)}" : $"1 − c = {N(1 - b.Confidence, 2)}",
            };
        });
        var iouSum = reading.Matches.Where(m => m.Matched).Sum(m => m.Iou);
        return new StringBuilder("<div class=muted>predictions in descending confidence; each takes the unmatched ground truth of highest IoU, a match needs IoU &gt; 0.5 (spec §4.4)</div>")
            .Append(Table(["pred", "<span class=l>box (0–1000)</span>", "conf", "matched", "IoU", "conf term"], rows))
            .Append($"<div>iou = Σ matched IoU ÷ max(n_gt, n_pred), capped at 1 = {N(iouSum)} ÷ max({truth.Count}, {reading.Matches.Count}) = <b>{N(r["iou"])}</b></div>")
            .Append($"<div>confidence = mean of the conf terms, clipped to [0, 1] = <b>{N(r["confidence"])}</b></div>")
            .ToString();
    }

    /// <summary>Why a completion fails the format check, in words (empty when it passes).</summary>
    public static IReadOnlyList<string> FormatProblems(string completion, RewardPreset preset)
    {
        if (Answers.HasFormat(completion, preset)) return [];
        var problems = new List<string>();
        var text = preset == RewardPreset.Strict ? completion.Trim() : completion;
        if (text.Length == 0) return ["the completion is empty"];
        int think = text.IndexOf("<think>", StringComparison.Ordinal), thinkEnd = text.IndexOf("</think>", StringComparison.Ordinal);
        int answer = text.IndexOf("<answer>", StringComparison.Ordinal), answerEnd = text.LastIndexOf("</answer>", StringComparison.Ordinal);
        if (think < 0) problems.Add("no <think>");
        else if (think > 0) problems.Add(preset == RewardPreset.VisualRft && text[..think].Trim().Length == 0
            ? "whitespace before <think> (visual-rft matches the raw completion)" : "text before <think>");
        if (thinkEnd < 0) problems.Add("no </think>");
        if (answer < 0) problems.Add("no <answer>");
        else if (thinkEnd >= 0 && answer < thinkEnd) problems.Add("<answer> before </think>");
        else if (thinkEnd >= 0 && text[(thinkEnd + "</think>".Length)..answer].Trim().Length > 0) problems.Add("text between </think> and <answer>");
        if (answerEnd < 0) problems.Add("no </answer> (cut off by the length limit?)");
        else if (answerEnd + "</answer>".Length < text.Length) problems.Add(text[(answerEnd + "</answer>".Length)..].Trim().Length == 0
            ? "whitespace after </answer> (visual-rft matches the raw completion)" : "text after </answer>");
        if (problems.Count == 0 && preset == RewardPreset.Strict) problems.Add("more than one think or answer block");
        return problems.Count == 0 ? ["the tags are out of order"] : problems;
    }
}
