using VisualRft.Grpo;
using VisualRft.Training;

namespace VisualRft.Tests.Grpo;

public class GrpoOptionsTests
{
    [Fact]
    public void Paper_preset_is_the_visual_rft_trainer()
    {
        var o = GrpoOptions.VisualRftPaper.Validate();
        Assert.Equal((8, 0.04, 1, LossType.Grpo, RewardScaling.Group), (o.NumGenerations, o.Beta, o.Mu, o.LossType, o.RewardScaling));
        Assert.Equal((1.0, 50, 1.0, 256), (o.Temperature, o.TopK, o.TopP, o.MaxCompletionLength));
        Assert.Equal((1e-6, LrSchedule.Linear, 0, 0.0, 1.0, 2), (o.LearningRate, o.LrSchedule, o.WarmupSteps, o.WeightDecay, o.MaxGradNorm, o.GradientAccumulation));
        Assert.Equal((0.9, 0.999, 1e-8), (o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon));
        Assert.True(o.UsesReference);
    }

    [Fact]
    public void Trl_preset_is_dapo_without_kl()
    {
        var o = GrpoOptions.TrlDefaults.Validate();
        Assert.Equal((LossType.Dapo, 0.0, 0.2, 0.28, RewardScaling.Group), (o.LossType, o.Beta, o.EpsilonLow, o.EpsilonHigh, o.RewardScaling));
        Assert.False(o.UsesReference);
    }

    public static TheoryData<GrpoOptions, string> Bad => new()
    {
        { new GrpoOptions { NumGenerations = 1 }, "NumGenerations" },
        { new GrpoOptions { Beta = -0.1 }, "Beta" },
        { new GrpoOptions { Beta = double.NaN }, "Beta" },
        { new GrpoOptions { Mu = 0 }, "Mu" },
        { new GrpoOptions { EpsilonLow = 1.0 }, "EpsilonLow" },
        { new GrpoOptions { LearningRate = 0 }, "LearningRate" },
        { new GrpoOptions { TopP = 0 }, "TopP" },
        { new GrpoOptions { Temperature = 0 }, "Temperature" },
        { new GrpoOptions { GradientAccumulation = 0 }, "GradientAccumulation" },
        { new GrpoOptions { LossType = (LossType)9 }, "LossType" },
        { new GrpoOptions { MaxGradNorm = double.PositiveInfinity }, "MaxGradNorm" },
    };

    [Theory, MemberData(nameof(Bad))]
    public void Invalid_values_name_the_knob(GrpoOptions o, string knob)
    {
        var e = Assert.Throws<ArgumentException>(() => o.Validate());
        Assert.Contains($"GrpoOptions.{knob} =", e.Message);
    }

    [Fact]
    public void Json_round_trips_and_rejects_unknown_keys()
    {
        var o = GrpoOptions.TrlDefaults with { Seed = 7, WarmupSteps = 3 };
        var json = o.ToJson();
        Assert.Contains("\"Dapo\"", json);
        Assert.Equal(o, GrpoOptions.FromJson(json));
        var e = Assert.Throws<InvalidDataException>(() => GrpoOptions.FromJson(json.Replace("\"Seed\"", "\"Sed\""), "ckpt/options"));
        Assert.Contains("ckpt/options", e.Message);
        Assert.Contains("Beta", Assert.Throws<InvalidDataException>(() => GrpoOptions.FromJson(json.Replace("\"Beta\": 0", "\"Beta\": -1"))).Message);
    }
}
