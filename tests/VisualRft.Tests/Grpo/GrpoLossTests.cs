using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Grpo;

public class GrpoLossTests
{
    static GrpoLossTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A random off-policy batch in float64: 2 groups of 3, 5 tokens, ragged masks, β 0.04, ε 0.2/0.28.</summary>
    static (Tensor logps, Tensor old, Tensor reference, Tensor adv, Tensor mask) Batch(Generator g)
    {
        var logps = -rand(6, 5, float64, generator: g) * 3;
        var old = logps + (rand(6, 5, float64, generator: g) - 0.5);
        var reference = logps + (rand(6, 5, float64, generator: g) - 0.5) * 0.2;
        var adv = randn(6, float64, generator: g);
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 1 }, { 1, 1, 0, 0, 0 }, { 1, 0, 0, 0, 0 }, { 1, 1, 1, 1, 0 }, { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } });
        return (logps, old, reference, adv, mask);
    }

    static GrpoOptions Opts(LossType t) => new() { LossType = t, Beta = 0.04, EpsilonLow = 0.2, EpsilonHigh = 0.28, MaxCompletionLength = 5, GradientAccumulation = 1 };

    [Theory]
    [InlineData(LossType.Grpo)]
    [InlineData(LossType.Bnpo)]
    [InlineData(LossType.DrGrpo)]
    [InlineData(LossType.Dapo)]
    public void Autograd_gradient_matches_central_differences(LossType type)
    {
        using var scope = NewDisposeScope();
        var (logps, old, reference, adv, mask) = Batch(new Generator(11));
        var o = Opts(type);
        var x = logps.clone().requires_grad_(true);
        GrpoLoss.Compute(x, old, reference, adv, mask, o).Loss.backward();
        var grad = x.grad!.clone();
        const double h = 1e-6;
        var numeric = zeros_like(logps);
        using (no_grad())
            for (int i = 0; i < 6; i++)
            for (int t = 0; t < 5; t++)
            {
                var plus = logps.clone(); plus[i, t] += h;
                var minus = logps.clone(); minus[i, t] -= h;
                var d = (GrpoLoss.Compute(plus, old, reference, adv, mask, o).LossValue - GrpoLoss.Compute(minus, old, reference, adv, mask, o).LossValue) / (2 * h);
                numeric[i, t] = d;
            }
        // Kinks of min/clamp sit at ratio = 1 − ε or 1 + ε exactly; the random batch is nowhere near them.
        Assert.True(grad.allclose(numeric, rtol: 1e-5, atol: 1e-8), $"max |Δ| = {(grad - numeric).abs().max().item<double>()}");
        Assert.True(grad.mul(1 - mask).abs().max().item<double>() == 0, "padding must get no gradient");
    }

    [Fact]
    public void On_policy_grpo_gradient_is_the_advantage_weighted_score_plus_kl()
    {
        // Spec §2.1: with μ = 1, exp(logp − logp.detach())·A == A with gradient A·∇logp, so per token
        // ∂loss/∂logp = (−A + β·(1 − exp(ref − logp))) / (len_i · N).
        using var scope = NewDisposeScope();
        var (logps, _, reference, adv, mask) = Batch(new Generator(3));
        var x = logps.clone().requires_grad_(true);
        var r = GrpoLoss.Compute(x, null, reference, adv, mask, Opts(LossType.Grpo));
        r.Loss.backward();
        var m = mask.to_type(float64);
        var expected = (-adv.unsqueeze(1) + 0.04 * (1 - (reference - logps).exp())) * m / m.sum(1, keepdim: true) / 6;
        Assert.True(x.grad!.allclose(expected, rtol: 1e-10, atol: 1e-12));
        Assert.Equal(0, r.ClipRegion);
        Assert.Equal(0, r.OutOfRangeFraction);
    }

    [Fact]
    public void Clip_fractions_follow_the_advantage_sign()
    {
        using var scope = NewDisposeScope();
        // ratio = exp(logp − old): 0.5 (below 0.8), 1.0, 2.0 (above 1.28); advantages −1 and +1.
        var logps = zeros(2, 3, float64);
        var old = tensor(new[,] { { Math.Log(2), 0, -Math.Log(2) }, { Math.Log(2), 0, -Math.Log(2) } });
        var adv = tensor(new[] { -1.0, 1.0 });
        var mask = ones(2, 3, int64);
        var r = GrpoLoss.Compute(logps, old, null, adv, mask, Opts(LossType.Bnpo) with { Beta = 0 });
        Assert.Equal(1 / 6.0, r.ClipLow, 12);     // ratio 0.5 with A < 0
        Assert.Equal(1 / 6.0, r.ClipHigh, 12);    // ratio 2 with A > 0
        Assert.Equal(2 / 6.0, r.ClipRegion, 12);
        Assert.Equal(4 / 6.0, r.OutOfRangeFraction, 12);
        Assert.Null(r.MeanKl);
    }

    [Fact]
    public void Accumulated_micro_batches_reproduce_the_full_batch_loss()
    {
        using var scope = NewDisposeScope();
        var (logps, old, reference, adv, mask) = Batch(new Generator(5));
        foreach (var type in Enum.GetValues<LossType>())
        {
            var o = Opts(type);
            var full = GrpoLoss.Compute(logps, old, reference, adv, mask, o).LossValue;
            var tokens = mask.sum().item<long>();
            double sum = 0;
            for (int k = 0; k < 2; k++)
            {
                Tensor R(Tensor t) => t.narrow(0, 3 * k, 3);
                sum += GrpoLoss.Compute(R(logps), R(old), R(reference), R(adv), R(mask), o, accumulationSteps: 2, dapoTokenCount: tokens).LossValue;
            }
            // grpo and dr_grpo average equal-sized micro-batches exactly; bnpo normalises per micro-batch (TRL docs: "may vary").
            if (type == LossType.Bnpo) Assert.NotEqual(full, sum, 6);
            else Assert.Equal(full, sum, 12);
        }
    }

    [Fact]
    public void Dapo_with_accumulation_requires_the_global_token_count()
    {
        using var scope = NewDisposeScope();
        var (logps, old, reference, adv, mask) = Batch(new Generator(5));
        var e = Assert.Throws<ArgumentException>(() => GrpoLoss.Compute(logps, old, reference, adv, mask, Opts(LossType.Dapo), accumulationSteps: 2));
        Assert.Contains("dapoTokenCount", e.Message);
    }

    [Fact]
    public void Kl_stays_finite_for_extreme_log_ratios()
    {
        using var scope = NewDisposeScope();
        var logps = tensor(new[] { -200f, 0f, -1e-3f });
        var reference = tensor(new[] { 0f, -200f, 0f });
        var kl = GrpoLoss.KlK3(logps, reference);
        Assert.True(kl.isfinite().all().item<bool>());
        Assert.Equal(Math.Exp(20) - 21, kl[0].item<float>(), 1e-6 * Math.Exp(20));
        Assert.True(kl[2].item<float>() >= 0);
        // Unclamped float32 would overflow: exp(200) = inf.
        Assert.False((reference - logps).exp().isfinite().all().item<bool>());
    }

    [Fact]
    public void Advantage_scalings_and_zero_std_groups()
    {
        using var scope = NewDisposeScope();
        var rewards = tensor(new[] { 1f, 0f, 1f, 0f, 0.5f, 0.5f, 0.5f, 0.5f });
        using var g = GrpoLoss.Advantages(rewards, 4, RewardScaling.Group);
        var std = Math.Sqrt(1 / 3.0);
        Assert.Equal(0.5 / (std + 1e-4), g.Advantages[0].item<float>(), 5);
        Assert.Equal([false, true], g.ZeroStdGroups);
        Assert.Equal(0.5, GroupAdvantages.FractionZeroStd(g.ZeroStdGroups));
        Assert.Equal(0, g.Advantages[5].item<float>());
        using var b = GrpoLoss.Advantages(rewards, 4, RewardScaling.Batch);
        Assert.Equal(0.5 / (rewards.std().item<float>() + 1e-4), b.Advantages[0].item<float>(), 5);
        using var n = GrpoLoss.Advantages(rewards, 4, RewardScaling.None);
        Assert.Equal(-0.5f, n.Advantages[1].item<float>());
    }

    [Theory]
    [InlineData(RewardScaling.Group)]
    [InlineData(RewardScaling.Batch)]
    [InlineData(RewardScaling.None)]
    public void The_tensor_advantages_are_the_plain_ones(RewardScaling scaling)
    {
        // GroupAdvantages.Of is what the trainer uses; GrpoLoss.Advantages must give the same numbers on tensors, with a
        // zero-std group among random ones.
        using var scope = NewDisposeScope();
        var random = new Random(7);
        var rewards = Enumerable.Range(0, 24).Select(i => i < 6 ? 0.75 : Math.Round(random.NextDouble() * 3, 2)).ToArray();
        var (plain, means, stds, zero) = GroupAdvantages.Of(rewards, 6, scaling);
        using var t = GrpoLoss.Advantages(tensor(rewards, float64), 6, scaling);
        static void Close(double[] expected, Tensor actual) => Assert.All(expected.Zip(actual.data<double>().ToArray()), x => Assert.Equal(x.First, x.Second, 12));
        Close(plain, t.Advantages);
        Close(means, t.GroupMean);
        Close(stds, t.GroupStd);
        Assert.Equal([true, false, false, false], zero);
        Assert.Equal(zero, t.ZeroStdGroups);
        Assert.Equal(0.25, GroupAdvantages.FractionZeroStd(zero));
    }

    [Fact]
    public void The_plain_kl_is_the_tensor_kl_and_the_loss_reports_the_one_it_used()
    {
        using var scope = NewDisposeScope();
        var (logps, old, reference, adv, mask) = Batch(new Generator(13));
        var kl = GrpoLoss.KlK3(logps, reference);
        var rows = mask.data<long>().ToArray();
        for (int i = 0; i < 6; i++)
        {
            var on = Enumerable.Range(0, 5).Select(t => rows[i * 5 + t] != 0).ToArray();
            var plain = GrpoLoss.KlK3(logps[i].to_type(float32).data<float>().ToArray(), reference[i].to_type(float32).data<float>().ToArray(), on);
            for (int t = 0; t < 5; t++)
                Assert.Equal(on[t] ? kl[i, t].item<double>() : 0, plain[t], 1e-6);
        }
        var r = GrpoLoss.Compute(logps, old, reference, adv, mask, Opts(LossType.Grpo));
        Assert.True(r.TokenKl!.allclose(kl * mask, rtol: 0, atol: 0));
        Assert.False(r.TokenKl!.requires_grad);
        Assert.Equal((kl * mask).sum().item<double>() / mask.sum().item<long>(), r.MeanKl!.Value, 12);
        Assert.Null(GrpoLoss.Compute(logps, old, null, adv, mask, Opts(LossType.Grpo) with { Beta = 0 }).TokenKl);
    }

    [Fact]
    public void Bad_inputs_give_clear_errors()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("groups of 3", Assert.Throws<ArgumentException>(() => GrpoLoss.Advantages(ones(4), 3)).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => GrpoLoss.Advantages(tensor(new[] { 1f, float.NaN }), 2)).Message);
        Assert.Contains("groups of 3", Assert.Throws<ArgumentException>(() => GroupAdvantages.Of([1, 1, 1, 1], 3)).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => GroupAdvantages.Of([1, double.NaN], 2)).Message);
        var (logps, old, reference, adv, mask) = Batch(new Generator(1));
        Assert.Contains("refLogps", Assert.Throws<ArgumentException>(() => GrpoLoss.Compute(logps, old, null, adv, mask, Opts(LossType.Grpo))).Message);
        Assert.Contains("completionMask", Assert.Throws<ArgumentException>(() => GrpoLoss.Compute(logps, old, reference, adv, mask[.., ..3], Opts(LossType.Grpo))).Message);
        Assert.Contains("MaxCompletionLength", Assert.Throws<ArgumentException>(() =>
            GrpoLoss.Compute(logps, old, reference, adv, mask, Opts(LossType.DrGrpo) with { MaxCompletionLength = 4 })).Message);
    }

    [Fact]
    public void Backward_helper_equals_autograd_of_compute()
    {
        using var scope = NewDisposeScope();
        var (logps, old, reference, adv, mask) = Batch(new Generator(9));
        var w = logps.clone().requires_grad_(true);            // stands in for a model's parameters
        var r = GrpoLoss.Backward(() => w * 1.0, old, reference, adv, mask, Opts(LossType.Grpo));
        Assert.False(r.Loss.requires_grad);
        var w2 = logps.clone().requires_grad_(true);
        GrpoLoss.Compute(w2 * 1.0, old, reference, adv, mask, Opts(LossType.Grpo)).Loss.backward();
        Assert.True(w.grad!.allclose(w2.grad!, rtol: 0, atol: 0));
        Assert.Throws<ArgumentException>(() => GrpoLoss.Backward(() => logps, old, reference, adv, mask, Opts(LossType.Grpo)));
    }
}
