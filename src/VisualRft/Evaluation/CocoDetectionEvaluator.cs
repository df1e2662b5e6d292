using VisualRft.Geometry;

namespace VisualRft.Evaluation;

/// <summary>
/// One ground-truth object of one image. <see cref="Area"/> is what the area ranges test (COCO's segment area; null = the
/// box's area); a crowd region (<see cref="IsCrowd"/>) is ignored and may absorb several detections.
/// </summary>
public sealed record GroundTruthObject(string ImageId, string Category, Box Box)
{
    public double? Area { get; init; }
    public bool IsCrowd { get; init; }
}

/// <summary>One predicted box with its ranking score (the answer's Confidence, visual-rft-spec.md §6.2).</summary>
public sealed record DetectionPrediction(string ImageId, string Category, Box Box, double Score);

/// <summary>
/// Per-category detection quality. AP values are percentages (×100, as the paper's tables); NaN when the category has no
/// ground truth (pycocotools' −1), and such categories are left out of the means.
/// </summary>
/// <param name="Category">The category name.</param>
/// <param name="GroundTruths">Ground-truth objects of the category over all images.</param>
/// <param name="Predictions">Predictions kept (at most maxDets per image).</param>
/// <param name="Ap">COCO AP@[.50:.95]: mean of the 101-point interpolated precision over the 10 IoU thresholds.</param>
/// <param name="Ap50">The same at IoU 0.50 only.</param>
/// <param name="Ap75">The same at IoU 0.75 only.</param>
/// <param name="TruePositives50">Predictions matched at IoU ≥ 0.5 (COCO greedy matching, top maxDets per image).</param>
public sealed record CategoryDetectionMetrics(
    string Category, int GroundTruths, int Predictions, double Ap, double Ap50, double Ap75, int TruePositives50)
{
    /// <summary>TP / predictions at IoU 0.5 (NaN without predictions).</summary>
    public double Precision50 => Predictions == 0 ? double.NaN : (double)TruePositives50 / Predictions;

    /// <summary>TP / ground truths at IoU 0.5 (NaN without ground truth).</summary>
    public double Recall50 => GroundTruths == 0 ? double.NaN : (double)TruePositives50 / GroundTruths;
}

/// <summary>
/// The paper's detection numbers (visual-rft-spec.md §6.2): per-category AP and their unweighted mean over the selected
/// categories (the "mAP" of Tables 3, 4, 7, 8 — not the pooled <c>summarize()</c> number).
/// </summary>
public sealed record DetectionMetrics(IReadOnlyList<CategoryDetectionMetrics> PerCategory, int MaxDetections)
{
    public double MeanAp => Mean(c => c.Ap);
    public double MeanAp50 => Mean(c => c.Ap50);
    public double MeanAp75 => Mean(c => c.Ap75);

    /// <summary>Pooled over the selected categories: all TP / all predictions at IoU 0.5.</summary>
    public double Precision50 => Ratio(PerCategory.Sum(c => c.TruePositives50), PerCategory.Sum(c => c.Predictions));

    /// <summary>Pooled over the selected categories: all TP / all ground truths at IoU 0.5.</summary>
    public double Recall50 => Ratio(PerCategory.Sum(c => c.TruePositives50), PerCategory.Sum(c => c.GroundTruths));

    public CategoryDetectionMetrics this[string category] =>
        PerCategory.FirstOrDefault(c => c.Category == category) ?? throw new KeyNotFoundException($"category '{category}' was not evaluated");

    double Mean(Func<CategoryDetectionMetrics, double> f)
    {
        var v = PerCategory.Where(c => c.GroundTruths > 0).Select(f).ToList();
        return v.Count == 0 ? double.NaN : v.Average();
    }

    static double Ratio(int a, int b) => b == 0 ? double.NaN : (double)a / b;
}

/// <summary>
/// COCO AP for in-memory boxes (the quickstart's and <see cref="PolicyEvaluator"/>'s path): pycocotools' matching and
/// accumulation (<see cref="CocoEvalCore"/>) for area range "all" and one maxDets, with boxes in any frame shared by
/// predictions and ground truth. Areas are the signed corner products (an inverted predicted box has a negative area,
/// falls outside every area range and is ignored when unmatched, as pycocotools does with the paper's converted boxes).
/// Images are taken in <see cref="ImageIdOrder"/>, which fixes the order of equal-score detections of different images.
/// For annotation files use <see cref="CocoEvaluator"/>.
/// </summary>
public static class CocoDetectionEvaluator
{
    public static IReadOnlyList<double> IouThresholds => CocoEvalCore.IouThresholds;
    public static IReadOnlyList<double> RecallThresholds => CocoEvalCore.RecallThresholds;

    /// <summary>Image ids that are integers sort numerically (as pycocotools sorts its ids), before any other id, which sort ordinally.</summary>
    public static IComparer<string> ImageIdOrder { get; } = Comparer<string>.Create((a, b) =>
    {
        bool ia = long.TryParse(a, out var x), ib = long.TryParse(b, out var y);
        return ia && ib ? x.CompareTo(y) : ia != ib ? (ia ? -1 : 1) : string.CompareOrdinal(a, b);
    });

    /// <param name="groundTruth">Every ground-truth object; an image without any is evaluated only through its predictions.</param>
    /// <param name="predictions">Every predicted box with its score, in the order the model produced them.</param>
    /// <param name="categories">Categories to report, in order; null = every category present in the ground truth, sorted.</param>
    /// <param name="maxDetections">Highest-scoring predictions kept per image and category (COCO maxDets, 100).</param>
    public static DetectionMetrics Evaluate(
        IEnumerable<GroundTruthObject> groundTruth, IEnumerable<DetectionPrediction> predictions,
        IEnumerable<string>? categories = null, int maxDetections = 100)
    {
        if (maxDetections < 1) throw new ArgumentOutOfRangeException(nameof(maxDetections), $"must be positive, got {maxDetections}");
        var gts = groundTruth.ToList();
        var dts = predictions.ToList();
        foreach (var d in dts)
            if (!double.IsFinite(d.Score)) throw new ArgumentException($"prediction for image '{d.ImageId}', category '{d.Category}' has a non-finite score {d.Score}", nameof(predictions));
        var cats = (categories ?? gts.Select(g => g.Category).Distinct().Order(StringComparer.Ordinal)).ToList();
        var images = gts.Select(g => g.ImageId).Concat(dts.Select(d => d.ImageId)).Distinct().Order(ImageIdOrder).ToList();
        var gtBy = gts.ToLookup(g => (g.ImageId, g.Category), g => new GtItem(g.Box, g.Box.Area, g.Area ?? g.Box.Area, g.IsCrowd, g.IsCrowd));
        var dtBy = dts.ToLookup(d => (d.ImageId, d.Category), d => new DtItem(d.Box, d.Box.Area, d.Score));
        var rules = new MatchRules(CrowdRegions: true, MaxDetsPerImageCategory: maxDetections);
        AreaRange[] all = [AreaRange.Standard[0]];
        return new DetectionMetrics([.. cats.Select(c =>
        {
            var perImage = images.Select(i => CocoEvalCore.EvaluateImage([.. gtBy[(i, c)]], [.. dtBy[(i, c)]], all, rules)[0]).ToList();
            var acc = CocoEvalCore.Accumulate(perImage, maxDetections);
            int tp50 = perImage.OfType<CocoEvalCore.ImageResult>()
                .Sum(r => Enumerable.Range(0, r.Scores.Length).Count(d => r.Matched[0, d] && !r.Ignored[0, d]));
            int kept = perImage.Sum(r => r?.Scores.Length ?? 0);
            int nGt = perImage.Sum(r => r?.RegularGt ?? 0);
            double Pct(double[]? p) => p is null ? double.NaN : 100 * p.Average();
            return new CategoryDetectionMetrics(c, nGt, kept, Pct(acc?.Precision), Pct(CocoEvaluator.Slice(acc?.Precision, 0)),
                Pct(CocoEvaluator.Slice(acc?.Precision, 5)), tp50);
        })], maxDetections);
    }
}
