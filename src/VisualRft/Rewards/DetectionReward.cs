using VisualRft.Geometry;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>
/// Detection reward: <c>iou</c> (R_IoU) + <c>confidence</c> (R_conf) + <c>format</c> (visual-rft-spec.md §4.3–4.7).
/// Answers are a JSON-like list <c>[{'Position': [x1, y1, x2, y2], 'Confidence': c}, …]</c> in the 0–1000 frame.
/// </summary>
/// <remarks>
/// <para><b>visual-rft</b> reproduces the official <c>accuracy_iou</c>, <c>accuracy_confidence</c> and <c>format_reward</c>
/// of [R] <c>grpo.py</c>, with these quirks:</para>
/// <list type="number">
/// <item>§4.2: the math_verify pre-check is <b>dropped</b> (the one deliberate deviation): a first box whose y1 equals the
/// ground truth's first y1 no longer scores 1.0/1.0.</item>
/// <item>§4.3.1: the answer is found by <c>&lt;answer&gt;(.*?)&lt;/answer&gt;</c> <b>without DOTALL</b>; an answer spanning a
/// newline, or a truncated answer, falls back to the whole completion (which then usually fails to parse; a bare list
/// without tags parses and scores normally, with format 0).</item>
/// <item>§4.3.2: every <c>[[</c> becomes <c>[</c> and <c>]]</c> becomes <c>]</c> (so <c>[[{…}]]</c> and <c>'Position': [[…]]</c>
/// score normally), and every <c>\n</c> is deleted, in the completion only (not the solution).</item>
/// <item>§4.3.3: truncation repair — text not ending in <c>]</c> is cut at its last <c>},</c> and closed with <c>}]</c>; this
/// drops a partial last box, and also silently drops the last complete box when text follows the list.</item>
/// <item>§4.3.3: <c>'</c> → <c>"</c>, then Python <c>json.loads</c> semantics: <c>NaN</c>, <c>Infinity</c>, <c>-Infinity</c> are
/// accepted; <c>true</c>/<c>false</c> are the numbers 1/0.</item>
/// <item>§4.3.5: reward 0 if nothing parses or the first element is not an object (<c>[]</c>, <c>No Objects</c>); exact
/// duplicate <c>Position</c>s are removed, keeping the first.</item>
/// <item>§4.4: greedy matching in descending confidence (stable; Python's sort order is reproduced even for NaN keys),
/// first maximum wins, match iff IoU is <b>strictly</b> greater than 0.5; IoU as <see cref="Box.IoU(Box, Box)"/> with GT first.</item>
/// <item>§4.5: R_IoU = Σ matched IoU ÷ max(n_gt, n_pred), capped at 1.</item>
/// <item>§4.6: R_conf = mean over predictions of (c if matched else 1 − c), clipped to [0, 1]; confidences are not range
/// checked. A <b>NaN confidence makes R_conf NaN</b> (both clip tests are false for NaN), so the total is NaN, as in the
/// original ([I#115]); so does a sum that meets +∞ and −∞ — an ∞ literal, or finite confidences near ±10^308 whose
/// terms overflow (e.g. 1e308 and −1e308 unmatched), exactly as Python's float arithmetic does. No other component can
/// be NaN.</item>
/// <item>§4.7: anything the Python code would raise on — missing or lower-case keys, a string or <c>null</c> confidence, a
/// 5-element Position, a list of lists — gives 0/0; but a malformed later box that is never compared (all GT already
/// matched) does not, exactly as in Python.</item>
/// <item>§4.1: format is <c>re.fullmatch</c> on the raw completion; any leading or trailing whitespace gives 0.</item>
/// </list>
/// <para>Ranges under visual-rft: iou ∈ [0, 1]; confidence ∈ [0, 1] or NaN; format ∈ {0, 1}.</para>
/// <para><b>strict</b>: answers are read with DOTALL (multi-line accepted; a missing <c>&lt;/answer&gt;</c> reads to the end),
/// the same repairs, and then every element must have four finite numbers as <c>Position</c> and a finite
/// <c>Confidence</c> in [0, 1] — one invalid element (NaN, ∞, 1.5, a string…) makes iou and confidence 0 for the whole
/// answer. Corners are normalised (min/max). "No Objects" is an empty prediction: it scores 1/1 against an empty (or
/// "No Objects") solution and 0/0 otherwise; an empty answer scores 0. Matching and formulas are the official ones, so
/// well-formed answers get the visual-rft scores. Ranges: iou, confidence ∈ [0, 1]; format ∈ {0, 1}.</para>
/// </remarks>
public sealed class DetectionReward : TaskReward
{
    public DetectionReward(RewardPreset preset = RewardPreset.VisualRft) : base(VisualTask.Detection, preset,
    [
        new("iou", "Σ matched IoU ÷ max(n_gt, n_pred), greedy confidence-ordered matching at IoU > 0.5, capped at 1 (spec §4.4–4.5)", 0, 1),
        new("confidence", preset == RewardPreset.VisualRft
            ? "mean of c (matched) or 1 − c (unmatched), clipped to [0, 1]; NaN for a NaN confidence or an overflowing sum (spec §4.6)"
            : "mean of c (matched) or 1 − c (unmatched); confidences must be finite and in [0, 1]", 0, 1),
        FormatComponent(preset),
    ])
    { }

    private protected override (double[] Values, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) Evaluate(string completion, string solution)
    {
        double format = Format(completion, Preset);
        if (Preset == RewardPreset.VisualRft)
        {
            var (iou, conf, failure, read, matches) = OfficialDetection.Score(completion, solution);
            return ([iou, conf, format], read, failure, matches);
        }
        var answer = StrictDetection.Parse(completion);
        var (sIou, sConf, sFailure, sMatches) = ScoreStrict(answer, StrictDetection.ParseSolution(solution));
        return ([sIou, sConf, format], answer, sFailure, sMatches);
    }

    static (double Iou, double Confidence, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) ScoreStrict(DetectionAnswer answer, DetectionAnswer truth)
    {
        if (truth.Failure is not null) return (0, 0, new(ParseFailureKind.InvalidSolution, $"solution: {truth.Failure.Message}"), []);
        if (answer.Failure is not null) return (0, 0, answer.Failure, []);
        var gt = truth.Boxes.Select(b => b.Position.Normalized()).ToArray();
        var preds = answer.Boxes.Select(b => b with { Position = b.Position.Normalized() }).ToList();
        if (preds.Count == 0)
            return gt.Length == 0 ? (1, 1, null, []) : (0, 0, new(ParseFailureKind.NoBox, $"no boxes predicted; the solution has {gt.Length}"), []);
        double iouSum = 0, confSum = 0;
        var matches = DetectionMatching.Greedy(gt, preds);
        foreach (var m in matches)
        {
            var c = preds[m.Prediction].Confidence;
            if (m.Matched) { iouSum += m.Iou; confSum += c; }
            else confSum += 1 - c;
        }
        double rIou = Math.Min(1.0, iouSum / Math.Max(gt.Length, preds.Count));
        return (rIou, Math.Clamp(confSum / preds.Count, 0, 1), null, matches);
    }
}
