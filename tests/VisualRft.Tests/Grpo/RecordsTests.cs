using VisualRft.Grpo;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Grpo;

public class RecordsTests
{
    static RecordsTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Experience_slices_micro_batches_and_counts_tokens()
    {
        using var scope = NewDisposeScope();
        var mask = tensor(new long[,] { { 1, 1, 0 }, { 1, 0, 0 }, { 1, 1, 1 }, { 1, 0, 0 } });
        var e = new Experience(zeros(4, 5, int64), ones(4, 5, int64), 2, mask, null, zeros(4, 3), arange(4, float32), arange(4, float32) - 1.5f);
        Assert.Equal(7, e.CompletionTokens);
        var second = e.Slice(2, 2);
        Assert.Equal(2, second.Count);
        Assert.Equal(4, second.CompletionTokens);
        Assert.Null(second.OldLogps);
        Assert.Equal(2f, second.Rewards[0].item<float>());
        Assert.Throws<ArgumentOutOfRangeException>(() => e.Slice(3, 2));
    }

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
