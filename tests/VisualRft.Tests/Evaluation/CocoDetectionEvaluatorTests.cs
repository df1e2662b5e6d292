using VisualRft.Geometry;
using VisualRft.Evaluation;

namespace VisualRft.Tests.Evaluation;

/// <summary>Hand-computed COCO AP cases (pycocotools semantics: 10 IoU thresholds, 101 recall points, precision envelope).</summary>
public class CocoDetectionEvaluatorTests
{
    static readonly Box A = new(0, 0, 100, 100), B = new(200, 200, 300, 300), Far = new(500, 500, 600, 600);
    static GroundTruthObject Gt(string img, Box b, string cat = "cat") => new(img, cat, b);
    static DetectionPrediction Dt(string img, Box b, double s, string cat = "cat") => new(img, cat, b, s);
    static DetectionMetrics Eval(GroundTruthObject[] g, DetectionPrediction[] d, int maxDets = 100) => CocoDetectionEvaluator.Evaluate(g, d, maxDetections: maxDets);

    [Fact]
    public void Thresholds_are_numpy_linspace()
    {
        Assert.Equal(10, CocoDetectionEvaluator.IouThresholds.Count);
        Assert.Equal(0.5, CocoDetectionEvaluator.IouThresholds[0]);
        Assert.Equal(0.95, CocoDetectionEvaluator.IouThresholds[9]);
        Assert.Equal(101, CocoDetectionEvaluator.RecallThresholds.Count);
        Assert.Equal(0.5, CocoDetectionEvaluator.RecallThresholds[50]);
        Assert.Equal(1.0, CocoDetectionEvaluator.RecallThresholds[100]);
    }

    [Fact]
    public void Perfect_detections_score_100()
    {
        var m = Eval([Gt("i1", A), Gt("i2", B), Gt("i2", A)], [Dt("i1", A, 0.9), Dt("i2", B, 0.8), Dt("i2", A, 0.7)]);
        Assert.Equal(100, m.MeanAp, 9);
        Assert.Equal(100, m.MeanAp50, 9);
        Assert.Equal(1.0, m.Precision50);
        Assert.Equal(1.0, m.Recall50);
    }

    [Fact]
    public void A_lone_true_positive_keeps_pycocotools_spacing()
    {
        // tp / (tp + fp + np.spacing(1)) with tp + fp = 1 is 1 − 2⁻⁵², not 1.
        var m = Eval([Gt("i1", A)], [Dt("i1", A, 0.5)]);
        Assert.Equal(100 * (1 - Math.Pow(2, -52)), m.MeanAp, 12);
        Assert.True(m.MeanAp < 100);
    }

    [Fact]
    public void No_predictions_score_0()
    {
        var m = Eval([Gt("i1", A), Gt("i2", B)], []);
        Assert.Equal(0, m.MeanAp);
        Assert.Equal(0, m.Recall50);
        Assert.True(double.IsNaN(m.Precision50));
    }

    [Fact]
    public void One_of_two_found_reaches_recall_half()
    {
        // Recall 0.5 covers the 51 recall thresholds 0.00 … 0.50; the other 50 get precision 0.
        var m = Eval([Gt("i1", A), Gt("i1", B)], [Dt("i1", A, 0.9)]);
        Assert.Equal(100.0 * 51 / 101, m.MeanAp, 9);
        Assert.Equal(0.5, m.Recall50);
        Assert.Equal(1.0, m.Precision50);
    }

    [Fact]
    public void A_false_positive_ranked_first_halves_AP_ranked_last_costs_nothing()
    {
        var fpFirst = Eval([Gt("i1", A)], [Dt("i1", Far, 0.9), Dt("i1", A, 0.8)]);
        Assert.Equal(50, fpFirst.MeanAp, 9);              // precision [0, .5] → envelope .5 at recall 1
        var tpFirst = Eval([Gt("i1", A)], [Dt("i1", A, 0.9), Dt("i1", Far, 0.8)]);
        Assert.Equal(100, tpFirst.MeanAp, 9);
        Assert.Equal(0.5, tpFirst.Precision50);           // precision/recall at 0.5 ignore the ranking
        Assert.Equal(fpFirst.Precision50, tpFirst.Precision50);
    }

    [Fact]
    public void False_positives_in_other_images_are_ranked_with_the_rest()
    {
        var m = Eval([Gt("i1", A)], [Dt("i1", A, 0.5), Dt("i2", B, 0.9)]);
        Assert.Equal(50, m.MeanAp, 9);
    }

    [Fact]
    public void IoU_062_counts_at_three_of_ten_thresholds()
    {
        var m = Eval([Gt("i1", A)], [Dt("i1", new Box(0, 0, 100, 62), 0.9), Dt("i2", B, 0.1)]);
        var c = m["cat"];
        Assert.Equal(30, c.Ap, 9);        // thresholds .50 .55 .60
        Assert.Equal(100, c.Ap50, 9);
        Assert.Equal(0, c.Ap75);
    }

    [Fact]
    public void Each_ground_truth_matches_once()
    {
        // Two predictions on one object: the second is a false positive at every threshold.
        var m = Eval([Gt("i1", A)], [Dt("i1", A, 0.9), Dt("i1", new Box(1, 1, 100, 100), 0.8)]);
        Assert.Equal(1, m["cat"].TruePositives50);
        Assert.Equal(2, m["cat"].Predictions);
    }

    [Fact]
    public void MaxDets_keeps_the_highest_scores_per_image()
    {
        var g = new[] { Gt("i1", A) };
        var d = new[] { Dt("i1", Far, 0.9), Dt("i1", B, 0.8), Dt("i1", A, 0.1) };
        Assert.Equal(0, Eval(g, d, maxDets: 2).MeanAp);
        Assert.Equal(100.0 / 3, Eval(g, d, maxDets: 3).MeanAp, 9);
    }

    [Fact]
    public void Mean_is_unweighted_over_selected_categories_with_ground_truth()
    {
        var g = new[] { Gt("i1", A, "dog"), Gt("i1", B, "dog"), Gt("i2", A, "cat") };
        var d = new[] { Dt("i1", A, 0.9, "dog"), Dt("i1", B, 0.8, "dog"), Dt("i2", Far, 0.9, "cat"), Dt("i2", A, 0.8, "cat"), Dt("i3", A, 0.5, "bird") };
        var m = CocoDetectionEvaluator.Evaluate(g, d, ["dog", "cat", "bird"]);
        Assert.Equal(100, m["dog"].Ap, 9);
        Assert.Equal(50, m["cat"].Ap, 9);
        Assert.True(double.IsNaN(m["bird"].Ap));           // no ground truth: −1 in pycocotools, left out of the mean
        Assert.Equal(75, m.MeanAp, 9);
        var dogOnly = CocoDetectionEvaluator.Evaluate(g, d, ["dog"]);
        Assert.Equal(100, dogOnly.MeanAp, 9);
    }

    [Fact]
    public void Equal_scores_keep_input_order()
    {
        // Stable sort: with equal scores the earlier prediction is ranked first, so FP-then-TP gives 50, TP-then-FP 100.
        Assert.Equal(50, Eval([Gt("i1", A)], [Dt("i1", Far, 0.5), Dt("i1", A, 0.5)]).MeanAp, 9);
        Assert.Equal(100, Eval([Gt("i1", A)], [Dt("i1", A, 0.5), Dt("i1", Far, 0.5)]).MeanAp, 9);
    }

    [Fact]
    public void Non_finite_scores_are_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Eval([Gt("i1", A)], [Dt("i1", A, double.NaN)]));
        Assert.Contains("i1", e.Message);
    }

    [Fact]
    public void IoU_matches_the_definition()
    {
        Assert.Equal(1.0, Box.IoU(A, A));
        Assert.Equal(0.0, Box.IoU(A, B));
        Assert.Equal(0.0, Box.IoU(A, new Box(100, 0, 200, 100)));   // touching edges
        Assert.Equal(50.0 * 100 / (10000 + 10000 - 5000), Box.IoU(A, new Box(50, 0, 150, 100)), 12);
    }
}
