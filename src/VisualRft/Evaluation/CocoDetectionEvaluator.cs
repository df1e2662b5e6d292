namespace VisualRft.Evaluation;

/// <summary>An axis-aligned box (x1, y1) top-left to (x2, y2) bottom-right, in any frame shared by predictions and ground truth.</summary>
public readonly record struct EvalBox(double X1, double Y1, double X2, double Y2)
{
    public double Area => Math.Max(0, X2 - X1) * Math.Max(0, Y2 - Y1);

    /// <summary>Intersection over union as pycocotools' <c>bbIou</c> computes it: no +1, no epsilon, 0 when disjoint.</summary>
    public static double IoU(EvalBox a, EvalBox b)
    {
        var w = Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1);
        var h = Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1);
        if (w <= 0 || h <= 0) return 0;
        var inter = w * h;
        return inter / (a.Area + b.Area - inter);
    }
}

/// <summary>One ground-truth object of one image.</summary>
public sealed record GroundTruthObject(string ImageId, string Category, EvalBox Box);

/// <summary>One predicted box with its ranking score (the answer's Confidence, visual-rft-spec.md §6.2).</summary>
public sealed record DetectionPrediction(string ImageId, string Category, EvalBox Box, double Score);

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
/// COCO bounding-box evaluation re-implemented after pycocotools' <c>COCOeval</c> (evaluateImg + accumulate), for the area
/// range "all" and one maxDets: per image, detections sorted by score (stable) and cut to maxDets; greedy matching in score
/// order to the unmatched ground truth of highest IoU ≥ threshold (ties go to the later one, as <c>iou &lt; t: continue</c>
/// does); per category, detections of all images merged and sorted by score (stable, image order), precision made monotone
/// from the right, and sampled at the 101 recall thresholds with a left-sided search (0 beyond the last recall reached).
/// No crowd or ignore regions exist in the synthetic data.
/// </summary>
public static class CocoDetectionEvaluator
{
    /// <summary>np.linspace(.5, .95, 10): start + i·step, last element exactly the stop value.</summary>
    public static IReadOnlyList<double> IouThresholds { get; } = Linspace(0.5, 0.95, 10);

    /// <summary>np.linspace(.0, 1.00, 101).</summary>
    public static IReadOnlyList<double> RecallThresholds { get; } = Linspace(0.0, 1.0, 101);

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
        // pycocotools sorts image ids; strings sort ordinally here, which only fixes the order of equal-score detections.
        var images = gts.Select(g => g.ImageId).Concat(dts.Select(d => d.ImageId)).Distinct().Order(StringComparer.Ordinal).ToList();
        var gtBy = gts.ToLookup(g => (g.ImageId, g.Category));
        var dtBy = dts.ToLookup(d => (d.ImageId, d.Category));
        return new DetectionMetrics([.. cats.Select(c => EvaluateCategory(c, images, gtBy, dtBy, maxDetections))], maxDetections);
    }

    static CategoryDetectionMetrics EvaluateCategory(
        string category, List<string> images, ILookup<(string, string), GroundTruthObject> gtBy,
        ILookup<(string, string), DetectionPrediction> dtBy, int maxDets)
    {
        int T = IouThresholds.Count, nGt = 0;
        var scores = new List<double>();
        var matched = new List<bool[]>();            // per kept detection: matched at each threshold
        foreach (var image in images)
        {
            var g = gtBy[(image, category)].ToList();
            var d = dtBy[(image, category)].OrderByDescending(x => x.Score).Take(maxDets).ToList();   // OrderBy is stable
            nGt += g.Count;
            var gtMatched = new bool[T, g.Count];
            foreach (var det in d)
            {
                var m = new bool[T];
                for (var t = 0; t < T; t++)
                {
                    var best = Math.Min(IouThresholds[t], 1 - 1e-10);
                    var hit = -1;
                    for (var j = 0; j < g.Count; j++)
                    {
                        if (gtMatched[t, j]) continue;
                        var iou = EvalBox.IoU(det.Box, g[j].Box);
                        if (iou < best) continue;
                        best = iou; hit = j;
                    }
                    if (hit < 0) continue;
                    gtMatched[t, hit] = true;
                    m[t] = true;
                }
                scores.Add(det.Score);
                matched.Add(m);
            }
        }

        var tp50 = matched.Count(m => m[0]);
        if (nGt == 0) return new CategoryDetectionMetrics(category, 0, scores.Count, double.NaN, double.NaN, double.NaN, tp50);

        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();   // stable, like mergesort
        var precisionAt = new double[T][];
        for (var t = 0; t < T; t++) precisionAt[t] = InterpolatedPrecision(order.Select(i => matched[i][t]).ToArray(), nGt);
        return new CategoryDetectionMetrics(category, nGt, scores.Count,
            Ap: 100 * precisionAt.Average(p => p.Average()),
            Ap50: 100 * precisionAt[0].Average(),
            Ap75: 100 * precisionAt[5].Average(),
            TruePositives50: tp50);
    }

    /// <summary>
    /// np.spacing(1), added to the denominator as pycocotools does. It rounds away except when tp + fp = 1, where a lone
    /// true positive scores 1 − 2⁻⁵² rather than 1: kept so that the numbers equal the reference's to the last bit.
    /// </summary>
    const double Spacing1 = 2.220446049250313e-16;

    /// <summary>pycocotools <c>accumulate</c> for one threshold: the 101 interpolated precision values.</summary>
    static double[] InterpolatedPrecision(bool[] tpInScoreOrder, int nGt)
    {
        var n = tpInScoreOrder.Length;
        var recall = new double[n];
        var precision = new double[n];
        double tp = 0, fp = 0;
        for (var i = 0; i < n; i++)
        {
            if (tpInScoreOrder[i]) tp++; else fp++;
            recall[i] = tp / nGt;
            precision[i] = tp / (fp + tp + Spacing1);
        }
        for (var i = n - 1; i > 0; i--)
            if (precision[i] > precision[i - 1]) precision[i - 1] = precision[i];
        var q = new double[RecallThresholds.Count];
        for (var r = 0; r < q.Length; r++)
        {
            var k = LowerBound(recall, RecallThresholds[r]);   // np.searchsorted(rc, recThrs, side='left')
            if (k >= n) break;                                   // IndexError in the original: the rest stay 0
            q[r] = precision[k];
        }
        return q;
    }

    static int LowerBound(double[] sorted, double value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (sorted[mid] < value) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    static double[] Linspace(double start, double stop, int num)
    {
        var step = (stop - start) / (num - 1);
        var y = new double[num];
        for (var i = 0; i < num; i++) y[i] = i * step + start;
        y[^1] = stop;
        return y;
    }
}
