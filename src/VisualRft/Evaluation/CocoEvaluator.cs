using VisualRft.Data;
using VisualRft.Geometry;

namespace VisualRft.Evaluation;

/// <summary>
/// One category's detection AP, in percent as the paper's tables print it; NaN where the category has no regular
/// ground truth (the tools' −1).
/// </summary>
/// <param name="CategoryId">The annotation file's category id.</param>
/// <param name="Name">The category's name.</param>
/// <param name="GroundTruths">Regular (not crowd, not ignored) ground-truth objects over all evaluated images.</param>
/// <param name="Detections">Detections taking part (COCO: at most 100 per image and category; LVIS: after the federated filter).</param>
/// <param name="Ap">AP@[.50:.95], area "all", largest maxDets: the per-class AP of visual-rft-spec.md §6.2.</param>
/// <param name="Ap50">The same at IoU 0.50.</param>
/// <param name="Ap75">The same at IoU 0.75.</param>
/// <param name="ApAllAreas">The mean over the four area ranges as well (entries without ground truth left out): the per-class AP
/// of the Visual-RFT LVIS notebook (spec §6.3).</param>
public sealed record CategoryAp(long CategoryId, string Name, int GroundTruths, int Detections, double Ap, double Ap50, double Ap75, double ApAllAreas);

/// <summary>Per-category results with the paper's mAP: the unweighted mean of per-class AP over an experiment's classes.</summary>
public abstract record DetectionEvaluation(IReadOnlyList<CategoryAp> PerCategory)
{
    public CategoryAp this[string name] => PerCategory.FirstOrDefault(c => c.Name == name)
        ?? throw new KeyNotFoundException($"category '{name}' was not evaluated (evaluated: {string.Join(", ", PerCategory.Select(c => c.Name))})");

    /// <summary>The per-class AP the paper averages: <see cref="CategoryAp.Ap"/> for COCO, <see cref="CategoryAp.ApAllAreas"/> for LVIS.</summary>
    public abstract double PaperAp(CategoryAp category);

    /// <summary>
    /// The reported mAP of Tables 3, 4, 7, 8 (spec §6.2–6.3): mean of the per-class AP over the named classes. As in the
    /// notebooks, a named class without ground truth (NaN) makes the mean NaN. Without names: the mean over every
    /// evaluated category that has ground truth.
    /// </summary>
    public double PaperMeanAp(IEnumerable<string>? categoryNames = null)
    {
        var values = categoryNames is null
            ? PerCategory.Select(PaperAp).Where(v => !double.IsNaN(v)).ToList()
            : categoryNames.Select(n => PaperAp(this[n])).ToList();
        return values.Count == 0 ? double.NaN : values.Average();
    }
}

/// <summary>pycocotools' bbox evaluation: the 12 numbers of <c>COCOeval.summarize()</c> (fractions, −1 where undefined) and per-category AP.</summary>
public sealed record CocoEvaluation(IReadOnlyList<double> Stats, IReadOnlyList<CategoryAp> PerCategory) : DetectionEvaluation(PerCategory)
{
    /// <summary>The summary lines in pycocotools' order.</summary>
    public static IReadOnlyList<string> StatNames { get; } = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

    public override double PaperAp(CategoryAp category) => category.Ap;
}

/// <summary>
/// COCO bounding-box evaluation exactly as pycocotools' <c>COCOeval(gt, dt, "bbox")</c> + <c>evaluate</c>,
/// <c>accumulate</c>, <c>summarize</c> computes it: 10 IoU thresholds .50:.95, 101 recall points, maxDets 1/10/100
/// per image and category, the four area ranges (the annotation's <c>area</c> for ground truth, w·h for detections),
/// crowd regions (ignored; IoU over the detection's area; may absorb many detections), images and categories in id order.
/// Detections of categories outside the evaluated ones are dropped, as with <c>params.catIds</c>.
/// </summary>
public static class CocoEvaluator
{
    public static IReadOnlyList<int> MaxDets { get; } = [1, 10, 100];

    /// <param name="groundTruth">The annotation file (images, categories, annotations).</param>
    /// <param name="detections">The results file's detections, in file order (it fixes the order of equal scores).</param>
    /// <param name="categoryIds">Categories to evaluate (<c>params.catIds</c>); null = every category of the annotation file.</param>
    public static CocoEvaluation Evaluate(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, IEnumerable<long>? categoryIds = null)
    {
        var images = groundTruth.Images.Select(i => i.Id).Order().ToArray();
        var cats = Categories(groundTruth, categoryIds);
        CheckImages(groundTruth, detections);
        var catSet = cats.ToHashSet();
        var gts = groundTruth.Annotations.Where(a => catSet.Contains(a.CategoryId))
            .ToLookup(a => (a.ImageId, a.CategoryId), a => new GtItem(Corners(a.Bbox), a.Bbox[2] * a.Bbox[3], a.Area, a.IsCrowd, a.IsCrowd));
        var dts = detections.Where(d => catSet.Contains(d.CategoryId)).ToLookup(d => (d.ImageId, d.CategoryId), Item);
        var rules = new MatchRules(CrowdRegions: true, MaxDetsPerImageCategory: MaxDets[^1]);
        var areas = AreaRange.Standard;
        int A = areas.Count, M = MaxDets.Count;

        var acc = new CocoEvalCore.Accumulated?[cats.Length, A, M];
        var perCategory = new List<CategoryAp>();
        for (int k = 0; k < cats.Length; k++)
        {
            var perImage = images.Select(i => CocoEvalCore.EvaluateImage([.. gts[(i, cats[k])]], [.. dts[(i, cats[k])]], areas, rules)).ToArray();
            for (int a = 0; a < A; a++)
                for (int m = 0; m < M; m++)
                    acc[k, a, m] = CocoEvalCore.Accumulate(perImage.Select(r => r[a]), MaxDets[m]);
            perCategory.Add(Category(groundTruth.Category(cats[k]), perImage, Enumerable.Range(0, A).Select(a => acc[k, a, M - 1]).ToArray(), MaxDets[^1]));
        }

        double Ap(int? t, int a, int m) => CocoEvalCore.MeanDefined(Enumerable.Range(0, cats.Length).Select(k => Slice(acc[k, a, m]?.Precision, t)));
        double Ar(int a, int m) => CocoEvalCore.MeanDefined(Enumerable.Range(0, cats.Length).Select(k => acc[k, a, m]?.Recall));
        int m100 = M - 1, t50 = 0, t75 = 5;
        double[] stats =
        [
            Ap(null, 0, m100), Ap(t50, 0, m100), Ap(t75, 0, m100), Ap(null, 1, m100), Ap(null, 2, m100), Ap(null, 3, m100),
            Ar(0, 0), Ar(0, 1), Ar(0, m100), Ar(1, m100), Ar(2, m100), Ar(3, m100),
        ];
        return new CocoEvaluation(stats, perCategory);
    }

    /// <summary>(x, y, x + w, y + h): the sums bbIou forms, so the corners equal its to the bit.</summary>
    internal static Box Corners(double[] b) => new(b[0], b[1], b[0] + b[2], b[1] + b[3]);

    internal static DtItem Item(CocoDetection d) => new(Corners(d.Bbox), d.Bbox[2] * d.Bbox[3], d.Score);

    internal static long[] Categories(CocoDataset gt, IEnumerable<long>? ids)
    {
        var known = gt.Categories.Select(c => c.Id).ToHashSet();
        var cats = (ids ?? known).Distinct().Order().ToArray();
        foreach (var c in cats)
            if (!known.Contains(c)) throw new ArgumentException($"category id {c} is not in {gt.Source} (ids: {string.Join(", ", known.Order().Take(20))}{(known.Count > 20 ? ", …" : "")})");
        return cats;
    }

    /// <summary>loadRes' check: every detection must be on an image of the annotation file.</summary>
    internal static void CheckImages(CocoDataset gt, IReadOnlyList<CocoDetection> detections)
    {
        var images = gt.Images.Select(i => i.Id).ToHashSet();
        var stray = detections.FirstOrDefault(d => !images.Contains(d.ImageId));
        if (stray != null) throw new InvalidDataException($"a detection is on image {stray.ImageId}, which is not in {gt.Source}: results do not correspond to this annotation file");
    }

    /// <summary>Precision entries of one IoU threshold (null = all ten).</summary>
    internal static double[]? Slice(double[]? precision, int? t)
    {
        if (precision is null || t is null) return precision;
        int r = CocoEvalCore.RecallThresholds.Length;
        return precision[(t.Value * r)..((t.Value + 1) * r)];
    }

    /// <summary>Per-category numbers from area "all" at the given maxDets; <paramref name="byArea"/> = that maxDets' result per area range.</summary>
    internal static CategoryAp Category(CocoCategory category, CocoEvalCore.ImageResult?[][] perImage, CocoEvalCore.Accumulated?[] byArea, int maxDet)
    {
        var all = byArea[0];
        double Pct(double v) => v < 0 ? double.NaN : 100 * v;
        int gts = perImage.Sum(r => r[0]?.RegularGt ?? 0);
        int dets = perImage.Sum(r => Math.Min(maxDet, r[0]?.Scores.Length ?? 0));
        return new CategoryAp(category.Id, category.Name, gts, dets,
            Pct(CocoEvalCore.MeanDefined([all?.Precision])), Pct(CocoEvalCore.MeanDefined([Slice(all?.Precision, 0)])),
            Pct(CocoEvalCore.MeanDefined([Slice(all?.Precision, 5)])), Pct(CocoEvalCore.MeanDefined(byArea.Select(a => a?.Precision))));
    }
}
