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
