using VisualRft.Geometry;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>What happened to one predicted box in the reward's matching.</summary>
/// <param name="Prediction">Index into the predictions as given (after duplicate removal).</param>
/// <param name="Truth">The ground-truth box it matched, or null.</param>
/// <param name="Iou">Its IoU with that box, or the best IoU it found when it matched nothing (0.5 or less).</param>
public sealed record BoxMatch(int Prediction, int? Truth, double Iou)
{
    public bool Matched => Truth is not null;
}

/// <summary>
/// Visual-RFT's detection matching (visual-rft-spec.md §4.4, <c>sort_and_calculate_iou</c>): predictions in descending
/// confidence (stable, like Python's <c>sorted</c>), each takes the unmatched ground-truth box of highest IoU (the first
/// of equal ones), and matches iff that IoU is strictly above 0.5. The strict reward scores with it; views use it to show
/// which box matched which. The visual-rft reward runs the same rule on Python values, to raise where Python would.
/// </summary>
public static class DetectionMatching
{
    public const double Threshold = 0.5;

    /// <summary>One entry per prediction, in matching order.</summary>
    public static IReadOnlyList<BoxMatch> Greedy(IReadOnlyList<Box> truth, IReadOnlyList<DetectionBox> predictions)
    {
        var taken = new bool[truth.Count];
        var result = new List<BoxMatch>(predictions.Count);
        foreach (var i in Enumerable.Range(0, predictions.Count).OrderByDescending(i => predictions[i].Confidence))
        {
            double best = 0;
            int bestJ = -1;
            for (int j = 0; j < truth.Count; j++)
            {
                if (taken[j]) continue;
                double iou = Box.IoU(truth[j], predictions[i].Position);
                if (iou > best) { best = iou; bestJ = j; }
            }
            var matched = best > Threshold;
            if (matched) taken[bestJ] = true;
            result.Add(new BoxMatch(i, matched ? bestJ : null, best));
        }
        return result;
    }
}
