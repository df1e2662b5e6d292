namespace VisualRft.Evaluation;

/// <summary>Reasoning-grounding quality as the paper's LISA evaluation computes it (visual-rft-spec.md §6.4, <c>merge_eval.py</c>).</summary>
public static class GroundingMetrics
{
    /// <summary>
    /// Box IoU with the +1e-6 of <c>merge_eval.py</c> in the denominator, on boxes divided by <paramref name="frame"/>
    /// (1000 for Qwen2-VL answers, so that coordinates are fractions of the image as in the original).
    /// </summary>
    public static double IoU(EvalBox prediction, EvalBox truth, double frame = 1000)
    {
        EvalBox p = Scale(prediction, frame), g = Scale(truth, frame);
        var w = Math.Max(0, Math.Min(p.X2, g.X2) - Math.Max(p.X1, g.X1));
        var h = Math.Max(0, Math.Min(p.Y2, g.Y2) - Math.Max(p.Y1, g.Y1));
        var inter = w * h;
        return inter / (p.Area + g.Area - inter + 1e-6);
    }

    /// <summary>mIoU over items, in [0, 1]; a missing prediction (null: unparseable answer) counts IoU 0, as in the original.</summary>
    public static double MeanIoU(IReadOnlyList<EvalBox?> predictions, IReadOnlyList<EvalBox> truths, double frame = 1000)
    {
        if (predictions.Count != truths.Count) throw new ArgumentException($"{predictions.Count} predictions for {truths.Count} ground truths", nameof(predictions));
        if (truths.Count == 0) throw new ArgumentException("mIoU of an empty set is undefined", nameof(truths));
        return predictions.Zip(truths).Average(p => p.First is { } b ? IoU(b, p.Second, frame) : 0.0);
    }

    static EvalBox Scale(EvalBox b, double f) => new(b.X1 / f, b.Y1 / f, b.X2 / f, b.Y2 / f);
}
