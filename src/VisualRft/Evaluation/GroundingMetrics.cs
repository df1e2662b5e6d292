using VisualRft.Geometry;

namespace VisualRft.Evaluation;

/// <summary>A binary mask of an image, row-major (index y·Width + x).</summary>
public sealed record BinaryMask(int Width, int Height, bool[] Pixels)
{
    public int Count => Pixels.Count(p => p);

    /// <summary>
    /// The pixels whose centres lie inside a pixel-frame box: a mask stand-in for a box where no segmenter (SAM in the
    /// paper, spec §6.4) turns boxes into masks.
    /// </summary>
    public static BinaryMask FromBox(Box pixels, int width, int height)
    {
        var b = pixels.Normalized();
        var m = new bool[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                m[y * width + x] = x + 0.5 >= b.X1 && x + 0.5 < b.X2 && y + 0.5 >= b.Y1 && y + 0.5 < b.Y2;
        return new BinaryMask(width, height, m);
    }
}

/// <summary>Mask-level scores of the LISA evaluation: gIoU = mean per-image IoU, cIoU = Σ intersection / Σ union.</summary>
/// <param name="GIoU">Mean per-image mask IoU, in [0, 1].</param>
/// <param name="CIoU">Cumulative IoU: Σ intersection / (Σ union + 1e-6), in [0, 1].</param>
/// <param name="Images">Images scored.</param>
/// <param name="Skipped">Images left out because the prediction's size differs from the ground truth's (as <c>mask_iou.py</c> does).</param>
public sealed record MaskIoU(double GIoU, double CIoU, int Images, int Skipped);

/// <summary>Reasoning-grounding quality as the paper's LISA evaluation computes it (visual-rft-spec.md §6.4).</summary>
public static class GroundingMetrics
{
    /// <summary>
    /// Box IoU of <c>Qwen2_VL_lisa_infere.py</c>'s <c>compute_iou(pred, gt)</c> (<see cref="IouVariant.LisaEvaluation"/>:
    /// +1e-6 in the denominator) on boxes divided by <paramref name="frame"/> (1000 for Qwen2-VL answers, so that
    /// coordinates are fractions of the image as in the original).
    /// </summary>
    public static double IoU(Box prediction, Box truth, double frame = 1000) =>
        Box.IoU(Scale(prediction, frame), Scale(truth, frame), IouVariant.LisaEvaluation);

    /// <summary>mIoU over items, in [0, 1]; a missing prediction (null: unparseable answer) counts IoU 0, as in the original.</summary>
    public static double MeanIoU(IReadOnlyList<Box?> predictions, IReadOnlyList<Box> truths, double frame = 1000)
    {
        if (predictions.Count != truths.Count) throw new ArgumentException($"{predictions.Count} predictions for {truths.Count} ground truths", nameof(predictions));
        if (truths.Count == 0) throw new ArgumentException("mIoU of an empty set is undefined", nameof(truths));
        return predictions.Zip(truths).Average(p => p.First is { } b ? IoU(b, p.Second, frame) : 0.0);
    }

    /// <summary>
    /// gIoU and cIoU as <c>mask_iou.py</c> computes them: per image IoU = intersection / (union + 1e-6); a missing
    /// prediction (null) is an empty mask (IoU 0); a prediction whose size differs from the ground truth's is skipped
    /// (counted in <see cref="MaskIoU.Skipped"/>, in neither mean); cIoU = Σ intersection / (Σ union + 1e-6).
    /// </summary>
    public static MaskIoU MaskScores(IEnumerable<(BinaryMask? Prediction, BinaryMask Truth)> items)
    {
        double sumIou = 0, inter = 0, union = 0;
        int n = 0, skipped = 0;
        foreach (var (p, g) in items)
        {
            if (p is not null && (p.Width != g.Width || p.Height != g.Height)) { skipped++; continue; }
            long i = 0, u = 0;
            for (int k = 0; k < g.Pixels.Length; k++)
            {
                bool a = p?.Pixels[k] ?? false, b = g.Pixels[k];
                if (a && b) i++;
                if (a || b) u++;
            }
            sumIou += i / (u + 1e-6);
            inter += i;
            union += u;
            n++;
        }
        return new MaskIoU(n == 0 ? 0 : sumIou / n, inter / (union + 1e-6), n, skipped);
    }

    static Box Scale(Box b, double f) => new(b.X1 / f, b.Y1 / f, b.X2 / f, b.Y2 / f);
}
