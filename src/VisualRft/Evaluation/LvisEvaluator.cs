using VisualRft.Data;

namespace VisualRft.Evaluation;

/// <summary>
/// The LVIS API's bbox evaluation: its summary (<c>LVISEval.results</c>: AP, AP50, AP75, APs, APm, APl, APr, APc, APf,
/// AR@300, ARs@300, ARm@300, ARl@300; fractions, −1 where undefined) and per-category AP. The paper's per-class AP is
/// <see cref="CategoryAp.ApAllAreas"/> (visual-rft-spec.md §6.3).
/// </summary>
public sealed record LvisEvaluation(IReadOnlyList<KeyValuePair<string, double>> Results, IReadOnlyList<CategoryAp> PerCategory)
    : DetectionEvaluation(PerCategory)
{
    public double this[int index] => Results[index].Value;

    public override double PaperAp(CategoryAp category) => category.ApAllAreas;
}

/// <summary>
/// LVIS evaluation exactly as the LVIS API's <c>LVISResults(gt, dt, max_dets)</c> + <c>LVISEval(gt, dt, "bbox").run()</c>
/// computes it. What differs from COCO: at most <c>max_dets</c> (300) detections per image over all categories, kept by
/// score before anything else; federated scoring — a detection counts only if its category is verified on its image,
/// present (has ground truth there) or absent (<c>neg_category_ids</c>); unmatched detections of a category in the
/// image's <c>not_exhaustive_category_ids</c> are ignored; no crowd regions (an optional <c>ignore</c> flag instead); no
/// per-category maxDets; AP by frequency group (r/c/f).
/// </summary>
public static class LvisEvaluator
{
    public const int DefaultMaxDets = 300;

    public static LvisEvaluation Evaluate(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, IEnumerable<long>? categoryIds = null,
        int maxDets = DefaultMaxDets)
    {
        if (maxDets < 1) throw new ArgumentOutOfRangeException(nameof(maxDets), $"must be positive, got {maxDets}");
        var images = groundTruth.Images.Select(i => i.Id).Order().ToArray();
        var cats = CocoEvaluator.Categories(groundTruth, categoryIds);
        CocoEvaluator.CheckImages(groundTruth, detections);
        var catSet = cats.ToHashSet();
        var anns = groundTruth.Annotations.Where(a => catSet.Contains(a.CategoryId)).ToList();
        var gts = anns.ToLookup(a => (a.ImageId, a.CategoryId), a => new GtItem(CocoEvaluator.Corners(a.Bbox), a.Bbox[2] * a.Bbox[3], a.Area, false, a.Ignore));
        var present = anns.Select(a => (a.ImageId, a.CategoryId)).ToHashSet();
        var dts = LimitPerImage(detections, maxDets)
            .Where(d => catSet.Contains(d.CategoryId))
            .Where(d => present.Contains((d.ImageId, d.CategoryId)) || groundTruth.Image(d.ImageId).NegCategoryIds.Contains(d.CategoryId))
            .ToLookup(d => (d.ImageId, d.CategoryId), CocoEvaluator.Item);
        var rules = new MatchRules(CrowdRegions: false, MaxDetsPerImageCategory: null);
        var areas = AreaRange.Standard;

        var acc = new CocoEvalCore.Accumulated?[cats.Length, areas.Count];
        var perCategory = new List<CategoryAp>();
        for (int k = 0; k < cats.Length; k++)
        {
            var perImage = images.Select(i => CocoEvalCore.EvaluateImage([.. gts[(i, cats[k])]], [.. dts[(i, cats[k])]], areas, rules,
                unmatchedIgnored: groundTruth.Image(i).NotExhaustiveCategoryIds.Contains(cats[k]))).ToArray();
            for (int a = 0; a < areas.Count; a++) acc[k, a] = CocoEvalCore.Accumulate(perImage.Select(r => r[a]), int.MaxValue);
            perCategory.Add(CocoEvaluator.Category(groundTruth.Category(cats[k]), perImage, Enumerable.Range(0, areas.Count).Select(a => acc[k, a]).ToArray(), int.MaxValue));
        }

        var frequency = cats.Select(c => groundTruth.Category(c).Frequency is { } f && "rcf".Contains(f) && f.Length == 1 ? f
            : throw new InvalidDataException($"{groundTruth.Source}: category {c} has no LVIS 'frequency' (r, c or f), needed for APr/APc/APf")).ToArray();
        double Ap(int? t, int a, string? group = null) => CocoEvalCore.MeanDefined(Enumerable.Range(0, cats.Length)
            .Where(k => group is null || frequency[k] == group).Select(k => CocoEvaluator.Slice(acc[k, a]?.Precision, t)));
        double Ar(int a) => CocoEvalCore.MeanDefined(Enumerable.Range(0, cats.Length).Select(k => acc[k, a]?.Recall));
        var results = new List<KeyValuePair<string, double>>
        {
            new("AP", Ap(null, 0)), new("AP50", Ap(0, 0)), new("AP75", Ap(5, 0)),
            new("APs", Ap(null, 1)), new("APm", Ap(null, 2)), new("APl", Ap(null, 3)),
            new("APr", Ap(null, 0, "r")), new("APc", Ap(null, 0, "c")), new("APf", Ap(null, 0, "f")),
            new($"AR@{maxDets}", Ar(0)), new($"ARs@{maxDets}", Ar(1)), new($"ARm@{maxDets}", Ar(2)), new($"ARl@{maxDets}", Ar(3)),
        };
        return new LvisEvaluation(results, perCategory);
    }

    /// <summary>
    /// <c>LVISResults.limit_dets_per_image</c>: an image with more than <paramref name="maxDets"/> detections keeps its
    /// highest-scoring ones (Python's stable sort, descending), whatever their category.
    /// </summary>
    static IEnumerable<CocoDetection> LimitPerImage(IReadOnlyList<CocoDetection> detections, int maxDets) =>
        detections.GroupBy(d => d.ImageId).SelectMany(g => g.Count() <= maxDets ? g : g.OrderByDescending(d => d.Score).Take(maxDets));
}
