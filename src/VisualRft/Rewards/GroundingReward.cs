using VisualRft.Geometry;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>
/// Reasoning-grounding (LISA) reward: <c>giou</c> (GIoU + 1) + <c>format</c> (visual-rft-spec.md §4.9). Answers are
/// <c>(x1,y1),(x2,y2)</c> in the 0–1000 frame, divided by 1000 before the GIoU.
/// </summary>
/// <remarks>
/// <para><b>visual-rft</b> reproduces [R] <c>grpo_lisa.py</c>:</para>
/// <list type="number">
/// <item>§4.2: the math_verify pre-check is dropped (it does not fire for these solutions).</item>
/// <item>§4.9.2: the solution's answer by the single-line regex, the completion's <b>with DOTALL</b> (the asymmetry is
/// the original's); each falls back to the whole stripped text.</item>
/// <item>§4.9.3: all <c>(x1,y1),(x2,y2)</c> matches (Python <c>\s</c>, Unicode <c>\d</c>) form the points [top-left of each] +
/// [bottom-right of each]; points 0 and 1 are the corners — so with two boxes the <b>two top-left corners</b> are paired.
/// No match → 0.</item>
/// <item>§4.9.4: GIoU with signed areas (<see cref="Box.GIoU"/>); corners are not ordered, so swapped corners
/// <c>(x2,y2),(x1,y1)</c> score 2.0 (an exploitable bug) and corners inverted on one axis give values outside [0, 2].</item>
/// <item>§4.9.5: if the stripped answer string equals the stripped solution string, the reward is 2.0, even when the
/// text holds no box.</item>
/// </list>
/// <para>Range under visual-rft (provable): for a solution box of area A &gt; 0 (in units of the whole image, A ≤ 1) and
/// answer coordinates in [0, 1000], giou ∈ [1 − 1/A, 1 + 1/A]. Proof: with C the enclosing-box area, C ≥ A, the value is
/// iou + union/C; iou ∈ [0, 1] and iou &gt; 0 only for a well-formed prediction, where union ≤ C gives ≤ 2 ≤ 1 + 1/A;
/// otherwise iou = 0 and union = A + A_pred with |A_pred| ≤ 1, so union/C ∈ [(A − 1)/A, (A + 1)/A]. Larger
/// coordinates widen it without bound, and coordinates above about 10^157 (numbers of 158 digits or more, which the
/// regex accepts; Python's <c>int(x) / 1000</c> stays finite up to 10^311) overflow the official float areas to ±∞, so
/// the official GIoU is NaN or −∞: reproduced here (checked against the formula run in CPython), like the detection
/// reward's NaN confidence. Longer numbers raise OverflowError in the original, so 0.</para>
/// <para><b>strict</b>: answer read with DOTALL; exactly one box (ASCII digits, decimals allowed), else 0 (none, or
/// several: <see cref="ParseFailureKind.MultipleBoxes"/>); corners normalised (min/max) in both answer and solution; no
/// exact-string shortcut; empty answer 0; GIoU computed without overflow for any finite coordinates. Range: giou ∈
/// [0, 2], always finite.</para>
/// </remarks>
public sealed class GroundingReward : TaskReward
{
    public GroundingReward(RewardPreset preset = RewardPreset.VisualRft) : base(VisualTask.Grounding, preset,
    [
        new("giou", preset == RewardPreset.VisualRft
            ? "GIoU + 1 of the official corner pairing, or 2 for an exact string match (spec §4.9); leaves [0, 2] for inverted corners, NaN for coordinates over ~10^157"
            : "GIoU + 1 of the single answer box with normalised corners", preset == RewardPreset.VisualRft ? double.NegativeInfinity : 0,
            preset == RewardPreset.VisualRft ? double.PositiveInfinity : 2),
        FormatComponent(preset),
    ])
    { }

    private protected override (double[] Values, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) Evaluate(string completion, string solution)
    {
        double format = Format(completion, Preset);
        string answerText = Answers.Answer(completion, VisualTask.Grounding, Preset);
        string truthText = Preset == RewardPreset.VisualRft
            ? Answers.SearchAnswerOrWhole(solution, dotAll: false)
            : Answers.Answer(solution, VisualTask.Grounding, Preset);
        var answer = GroundingParsing.Parse(answerText, Preset);
        var truth = GroundingParsing.Parse(truthText, Preset);
        double giou = 0;
        ParseFailure? failure = null;
        if (truth.Box is not { } t) failure = new(ParseFailureKind.InvalidSolution, $"solution: {truth.Failure?.Message}");
        else if (answer.Box is not { } a) failure = answer.Failure;
        else giou = (Preset == RewardPreset.VisualRft ? Box.GIoU(PerMille(t), PerMille(a)) : ScaledGIoU(PerMille(t), PerMille(a))) + 1;
        if (Preset == RewardPreset.VisualRft)
        {
            if (answerText == truthText) return ([2.0, format], answer, null, []);   // §4.9.5 exact-string shortcut, applied last
            return ([giou, format], answer, failure, []);
        }
        return ([Math.Clamp(giou, 0, 2), format], answer, failure, []);
    }

    /// <summary>
    /// GIoU computed on both boxes scaled by one power of two that brings the largest coordinate near 1. Scaling by a
    /// power of two is exact, so the result is the unscaled one bit for bit whenever that one does not overflow; for
    /// coordinates beyond ~10^154 the areas would overflow to ∞ and the GIoU become NaN, and here it stays the true
    /// (scale-invariant) value. strict only: the official arithmetic overflows (see the remarks).
    /// </summary>
    static double ScaledGIoU(Box a, Box b)
    {
        double largest = new[] { a.X1, a.Y1, a.X2, a.Y2, b.X1, b.Y1, b.X2, b.Y2 }.Max(Math.Abs);
        if (largest < 1e150) return Box.GIoU(a, b);
        double s = Math.ScaleB(1, -Math.ILogB(largest));
        return Box.GIoU(a.Scale(s, s), b.Scale(s, s));
    }

    /// <summary><c>int(x) / 1000</c> per coordinate, as the original (division, not multiplication by 0.001).</summary>
    static Box PerMille(Box b) => ImageFrames.Rescale(b, (1000, 1000), (1, 1));
}
