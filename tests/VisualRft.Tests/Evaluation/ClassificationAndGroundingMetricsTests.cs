using VisualRft.Geometry;
using VisualRft.Evaluation;

namespace VisualRft.Tests.Evaluation;

public class ClassificationAndGroundingMetricsTests
{
    [Theory]   // visual-rft-spec.md §4.8 consequences of the original rule
    [InlineData("garden phlox", "garden phlox", true)]
    [InlineData("Garden_Phlox", "garden phlox", true)]
    [InlineData("BMW", "2012 BMW 1 Series Convertible", true)]
    [InlineData("", "2012 BMW 1 Series Convertible", true)]
    [InlineData("A", "A320", true)]
    [InlineData("globe flower", "globe-flower", false)]
    [InlineData("two stripe square", "three stripe square", false)]
    public void Paper_rule_is_normalised_bidirectional_substring(string answer, string label, bool right) =>
        Assert.Equal(right, ClassificationMetrics.IsMatch(answer, label));

    [Fact]
    public void Exact_rule_and_missing_answers()
    {
        Assert.False(ClassificationMetrics.IsMatch("", "A320", ClassMatchRule.Exact));
        Assert.False(ClassificationMetrics.IsMatch("A", "A320", ClassMatchRule.Exact));
        Assert.True(ClassificationMetrics.IsMatch(" a 320 ", "A320", ClassMatchRule.Exact));
        Assert.False(ClassificationMetrics.IsMatch(null, "A320"));
        Assert.Equal(0.5, ClassificationMetrics.Accuracy(["solid circle", null, "hollow circle", "x"], ["solid circle", "solid circle", "hollow circle", "dotted circle"]));
        Assert.Throws<ArgumentException>(() => ClassificationMetrics.Accuracy(["a"], ["a", "b"]));
    }

    [Fact]
    public void Grounding_mIoU_counts_failures_as_zero()
    {
        var gt = new Box(100, 100, 300, 300);
        Assert.Equal(1.0, GroundingMetrics.IoU(gt, gt), 4);
        Assert.True(GroundingMetrics.IoU(gt, gt) < 1.0);                               // the +1e-6 of merge_eval.py
        Assert.Equal(0.0, GroundingMetrics.IoU(new Box(500, 500, 600, 600), gt));
        var half = GroundingMetrics.IoU(new Box(100, 100, 300, 200), gt);           // inter .02, union .04
        Assert.Equal(0.02 / (0.04 + 1e-6), half, 12);
        Assert.Equal((0.02 / (0.04 + 1e-6) + 0) / 2, GroundingMetrics.MeanIoU([new Box(100, 100, 300, 200), null], [gt, gt]), 12);
    }
}

public class IouVariantAndMaskTests
{
    [Fact]
    public void The_variants_differ_only_where_the_reference_code_differs()
    {
        Box gt = new(0, 0, 100, 100), half = new(0, 0, 100, 50);
        Assert.Equal(0.5, Box.IoU(half, gt));                                        // exactly on the COCO threshold
        Assert.Equal(0.5, Box.IoU(half, gt, IouVariant.PyCocoTools));
        Assert.Equal(1.0, Box.IoU(half, gt, IouVariant.PyCocoToolsCrowd));           // inside a crowd region: over its own area
        Assert.Equal(5000 / (10000 + 1e-6), Box.IoU(half, gt, IouVariant.LisaEvaluation), 15);
        Box tiny = new(0, 0, 1e-170, 1e-170);                                        // intersection > 0, areas underflow to 0
        Assert.Equal(0.0, Box.IoU(tiny, tiny));
        Assert.Throws<DivideByZeroException>(() => Box.IoU(tiny, tiny, IouVariant.OfficialReward));
        Assert.True(double.IsNaN(Box.IoU(tiny, tiny, IouVariant.PyCocoTools)));
        Assert.Equal(0.0, Box.IoU(new Box(100, 0, 0, 100), gt, IouVariant.PyCocoTools));   // inverted: empty intersection
    }

    [Fact]
    public void Mask_gIoU_is_the_mean_per_image_and_cIoU_the_pooled_ratio()
    {
        var truth = BinaryMask.FromBox(new Box(0, 0, 4, 4), 8, 8);                   // 16 pixels
        var half = BinaryMask.FromBox(new Box(0, 0, 4, 2), 8, 8);                    // 8 inside
        var big = BinaryMask.FromBox(new Box(0, 0, 8, 8), 8, 8);                     // 64, covers the truth
        Assert.Equal(16, truth.Count);
        var s = GroundingMetrics.MaskScores([(half, truth), (big, truth), (null, truth), (BinaryMask.FromBox(new Box(0, 0, 2, 2), 4, 4), truth)]);
        Assert.Equal((3, 1), (s.Images, s.Skipped));
        Assert.Equal((8 / (16 + 1e-6) + 16 / (64 + 1e-6) + 0) / 3, s.GIoU, 12);
        Assert.Equal((8.0 + 16) / (16 + 64 + 16 + 1e-6), s.CIoU, 12);
    }
}
