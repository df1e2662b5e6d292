using VisualRft.Grpo;

namespace VisualRft.Tests.Grpo;

public class RewardStatTests
{
    [Fact]
    public void Reward_stats_use_the_unbiased_std()
    {
        var s = RewardStat.OfComponents(new Dictionary<string, double[]> { ["iou"] = [1, 0, 0.5, 0.5], ["format"] = [1] });
        Assert.Equal(0.5, s["iou"].Mean);
        Assert.Equal(Math.Sqrt(0.5 / 3), s["iou"].Std, 12);
        Assert.Equal(0, s["format"].Std);
        Assert.Throws<ArgumentException>(() => RewardStat.Of([]));
    }
}
