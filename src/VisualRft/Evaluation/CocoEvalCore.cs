using VisualRft.Geometry;

namespace VisualRft.Evaluation;

/// <summary>A ground-truth object as the matcher sees it.</summary>
/// <param name="Box">Corners; for COCO JSON (x, y, x + w, y + h).</param>
/// <param name="BoxArea">The area IoU uses: w·h of the [x, y, w, h] box, as pycocotools' <c>bbIou</c> computes it.</param>
/// <param name="Area">The area the area ranges test: the annotation's <c>area</c> (the segment's area in COCO and LVIS).</param>
/// <param name="Crowd">A crowd region (COCO iscrowd = 1): IoU over the detection's area, may match many detections.</param>
/// <param name="Ignore">Never counted: crowd regions in COCO, <c>ignore</c> = 1 in LVIS.</param>
readonly record struct GtItem(Box Box, double BoxArea, double Area, bool Crowd, bool Ignore);

/// <summary>A detection as the matcher sees it; <paramref name="Area"/> = w·h, used for both IoU and the area ranges.</summary>
readonly record struct DtItem(Box Box, double Area, double Score);

/// <summary>An area range [Min, Max], both ends included (pycocotools ignores an object iff area &lt; min or area &gt; max).</summary>
public sealed record AreaRange(string Label, double Min, double Max)
{
    /// <summary>COCO's and LVIS's four ranges: all, small (&lt; 32²), medium (32²–96²), large (&gt; 96²).</summary>
    public static IReadOnlyList<AreaRange> Standard { get; } =
    [
        new("all", 0, 1e5 * 1e5), new("small", 0, 32 * 32), new("medium", 32 * 32, 96 * 96), new("large", 96 * 96, 1e5 * 1e5),
    ];

    public bool Excludes(double area) => area < Min || area > Max;
}

/// <summary>The rules in which COCOeval and LVISEval differ; everything else is shared.</summary>
/// <param name="CrowdRegions">COCO: crowd ground truth matches many detections, with the crowd IoU. LVIS: no crowd.</param>
/// <param name="MaxDetsPerImageCategory">COCO cuts each (image, category) to its maxDets before matching; LVIS cut each image to
/// 300 detections over all categories before (null here).</param>
sealed record MatchRules(bool CrowdRegions, int? MaxDetsPerImageCategory);

/// <summary>
/// The matching and accumulation that pycocotools' <c>COCOeval.evaluateImg</c>/<c>accumulate</c> and the LVIS API's
/// <c>LVISEval.evaluate_img</c>/<c>accumulate</c> share, re-implemented step by step. Per image and category: detections
/// sorted by score (stable), ground truth sorted ignored-last (stable); for each IoU threshold each detection in score
/// order takes the unmatched ground truth of highest IoU ≥ the threshold (a later one wins a tie; once matched to a
/// regular object it does not move to an ignored one); a detection matched to an ignored object, or unmatched and outside
/// the area range (or of a category the image is not exhaustively annotated for, LVIS), is ignored. Per category, area
/// range and maxDets: detections of all images (in image order) stably sorted by score, precision made monotone from the
/// right and read at the 101 recall thresholds by a left-sided search (0 beyond the last recall reached).
/// </summary>
static class CocoEvalCore
{
    /// <summary>np.linspace(.5, .95, 10): start + i·step, the last element exactly the stop value.</summary>
    public static readonly double[] IouThresholds = Linspace(0.5, 0.95, 10);

    /// <summary>np.linspace(.0, 1.00, 101).</summary>
    public static readonly double[] RecallThresholds = Linspace(0.0, 1.0, 101);

    /// <summary>
    /// np.spacing(1), added to the precision denominator as both tools do. It rounds away except when tp + fp = 1, where a
    /// lone true positive scores 1 − 2⁻⁵² rather than 1: kept so that the numbers equal the reference's to the last bit.
    /// </summary>
    const double Spacing1 = 2.220446049250313e-16;

    /// <summary>One (image, category, area range) after matching; null in the tools where the image has neither.</summary>
    public sealed class ImageResult(double[] scores, bool[,] matched, bool[,] ignored, int regularGt)
    {
        public double[] Scores { get; } = scores;
        public bool[,] Matched { get; } = matched;
        public bool[,] Ignored { get; } = ignored;
        public int RegularGt { get; } = regularGt;
    }

    /// <summary>Precision [T·R] (row-major) and recall [T] of one category, area range and maxDets; null = no regular ground truth (the tools' −1).</summary>
    public sealed record Accumulated(double[] Precision, double[] Recall);

    /// <summary>
    /// Matches one image's detections of one category to its ground truth, in every area range.
    /// <paramref name="unmatchedIgnored"/>: LVIS's not-exhaustive rule for this (image, category).
    /// </summary>
    public static ImageResult?[] EvaluateImage(IReadOnlyList<GtItem> gt, IReadOnlyList<DtItem> dt, IReadOnlyList<AreaRange> areas,
        MatchRules rules, bool unmatchedIgnored = false)
    {
        var results = new ImageResult?[areas.Count];
        if (gt.Count == 0 && dt.Count == 0) return results;
        // computeIoU: detections by score (mergesort, stable), cut to maxDets[-1] (COCO only).
        var dets = dt.Select((d, i) => (d, i)).OrderByDescending(p => p.d.Score).Select(p => p.d)
            .Take(rules.MaxDetsPerImageCategory ?? int.MaxValue).ToArray();
        var ious = new double[dets.Length, gt.Count];
        for (int d = 0; d < dets.Length; d++)
            for (int g = 0; g < gt.Count; g++)
            {
                bool crowd = rules.CrowdRegions && gt[g].Crowd;
                ious[d, g] = Box.IoU(dets[d].Box, dets[d].Area, gt[g].Box, gt[g].BoxArea, crowd ? IouVariant.PyCocoToolsCrowd : IouVariant.PyCocoTools);
            }
        for (int a = 0; a < areas.Count; a++) results[a] = Match(gt, dets, ious, areas[a], rules, unmatchedIgnored);
        return results;
    }

    static ImageResult Match(IReadOnlyList<GtItem> gtIn, DtItem[] dt, double[,] iousIn, AreaRange range, MatchRules rules, bool unmatchedIgnored)
    {
        int T = IouThresholds.Length, G = gtIn.Count, D = dt.Length;
        // gt '_ignore', then sorted ignored-last (stable).
        var order = Enumerable.Range(0, G).OrderBy(g => gtIn[g].Ignore || range.Excludes(gtIn[g].Area) ? 1 : 0).ToArray();
        var gtIg = order.Select(g => gtIn[g].Ignore || range.Excludes(gtIn[g].Area)).ToArray();
        var crowd = order.Select(g => rules.CrowdRegions && gtIn[g].Crowd).ToArray();
        var gtm = new bool[T, G];
        var dtm = new bool[T, D];
        var dtIg = new bool[T, D];
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++)
            {
                double best = Math.Min(IouThresholds[t], 1 - 1e-10);
                int m = -1;
                for (int g = 0; g < G; g++)
                {
                    if (gtm[t, g] && !crowd[g]) continue;
                    if (m > -1 && !gtIg[m] && gtIg[g]) break;
                    double iou = iousIn[d, order[g]];
                    if (iou < best) continue;
                    best = iou;
                    m = g;
                }
                if (m == -1) continue;
                dtIg[t, d] = gtIg[m];
                dtm[t, d] = true;
                gtm[t, m] = true;
            }
        for (int d = 0; d < D; d++)
            if (range.Excludes(dt[d].Area) || unmatchedIgnored)
                for (int t = 0; t < T; t++)
                    if (!dtm[t, d]) dtIg[t, d] = true;
        return new ImageResult(dt.Select(d => d.Score).ToArray(), dtm, dtIg, gtIg.Count(i => !i));
    }

    /// <summary>accumulate for one category, area range and maxDets over the images' results (in image order).</summary>
    public static Accumulated? Accumulate(IEnumerable<ImageResult?> images, int maxDet)
    {
        var e = images.OfType<ImageResult>().ToList();
        if (e.Count == 0) return null;
        int npig = e.Sum(r => r.RegularGt);
        if (npig == 0) return null;
        int T = IouThresholds.Length, R = RecallThresholds.Length;
        var all = new List<(double Score, ImageResult Image, int D)>();
        foreach (var r in e)
            for (int d = 0; d < Math.Min(maxDet, r.Scores.Length); d++) all.Add((r.Scores[d], r, d));
        var sorted = all.OrderByDescending(x => x.Score).ToArray();   // stable, like mergesort on −score
        var precision = new double[T * R];
        var recall = new double[T];
        var rc = new List<double>(sorted.Length);
        var pr = new List<double>(sorted.Length);
        for (int t = 0; t < T; t++)
        {
            rc.Clear();
            pr.Clear();
            double tp = 0, fp = 0;
            foreach (var (_, img, d) in sorted)
            {
                // The cumulative sums run over every detection; an ignored one adds to neither.
                if (!img.Ignored[t, d]) { if (img.Matched[t, d]) tp++; else fp++; }
                rc.Add(tp / npig);
                pr.Add(tp / (fp + tp + Spacing1));
            }
            int nd = rc.Count;
            recall[t] = nd > 0 ? rc[^1] : 0;
            for (int i = nd - 1; i > 0; i--)
                if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
            for (int r = 0; r < R; r++)
            {
                int k = LowerBound(rc, RecallThresholds[r]);   // np.searchsorted(rc, recThrs, side='left')
                if (k >= nd) break;                              // IndexError in the original: the rest stay 0
                precision[t * R + r] = pr[k];
            }
        }
        return new Accumulated(precision, recall);
    }

    static int LowerBound(List<double> sorted, double value)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (sorted[mid] < value) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>Mean of the entries that are not −1, as the tools' <c>_summarize</c> and the Visual-RFT notebooks compute it; −1 if none.</summary>
    public static double MeanDefined(IEnumerable<double[]?> blocks)
    {
        double sum = 0;
        long n = 0;
        foreach (var b in blocks)
        {
            if (b is null) continue;
            foreach (var v in b) { sum += v; n++; }
        }
        return n == 0 ? -1 : sum / n;
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
