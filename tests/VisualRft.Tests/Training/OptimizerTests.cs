using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Tests.Training;

public class OptimizerTests
{
    static OptimizerTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A small MLP whose weights come from a private generator (the global one is shared by parallel tests).</summary>
    internal static nn.Module<Tensor, Tensor> Mlp(ulong seed)
    {
        var m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1));
        var g = new Generator(seed);
        using var _ = no_grad();
        foreach (var p in m.parameters()) p.copy_(randn(p.shape, generator: g) * 0.5);
        return m;
    }

    internal static GrpoOptions Opts => new() { LearningRate = 1e-2, GradientAccumulation = 2, MaxGradNorm = 0.5, WeightDecay = 0.01 };

    static Dictionary<string, Tensor> Snapshot(nn.Module m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>Every AdamW per-parameter step count and moment, flattened in order.</summary>
    internal static double[] Moments(PolicyOptimizer o) =>
        o.Inner.state_dict().State.Cast<TorchSharp.Modules.AdamW.State>()
            .SelectMany(st => new[] { (double)st.step }.Concat(st.exp_avg.data<float>().ToArray().Select(v => (double)v))
                .Concat(st.exp_avg_sq.data<float>().ToArray().Select(v => (double)v))).ToArray();

    [Theory]
    [InlineData(LrSchedule.Linear, 0, 25, 1, 0.96)]     // spec §2.3: lr 9.6e-7 after step 1 of 25
    [InlineData(LrSchedule.Linear, 0, 25, 0, 1.0)]
    [InlineData(LrSchedule.Linear, 0, 25, 25, 0.0)]
    [InlineData(LrSchedule.Linear, 4, 10, 0, 0.0)]      // HF: warm-up starts at 0
    [InlineData(LrSchedule.Linear, 4, 10, 2, 0.5)]
    [InlineData(LrSchedule.Linear, 4, 10, 4, 1.0)]
    [InlineData(LrSchedule.Linear, 4, 10, 7, 0.5)]
    [InlineData(LrSchedule.Constant, 4, 10, 9, 1.0)]
    public void Schedule_matches_hf_lambdas(LrSchedule s, int warmup, int total, int step, double factor) =>
        Assert.Equal(factor, LearningRateSchedule.Factor(s, step, total, warmup), 12);

    [Fact]
    public void One_step_changes_every_parameter_and_follows_the_schedule()
    {
        using var scope = NewDisposeScope();
        var m = Mlp(1);
        using var opt = new PolicyOptimizer(m, Opts.Optimizer, totalSteps: 4);
        var before = Snapshot(m);
        var x = randn(8, 4, generator: new Generator(2));
        for (int k = 0; k < 2; k++) opt.Backward(m.forward(x).pow(2).mean() / 2);
        Assert.True(opt.IsStepDue);
        var r = opt.Step();
        Assert.False(r.Skipped);
        Assert.Equal(1e-2, r.LearningRate, 15);
        Assert.True(r.GradNorm > 0);
        foreach (var (k, v) in m.state_dict()) Assert.False(v.eq(before[k]).all().item<bool>(), $"{k} did not change");
        Assert.Equal(1, opt.StepCount);
        Assert.Equal(0.75e-2, opt.NextLearningRate, 15);
        Assert.Equal(0.75e-2, opt.Inner.ParamGroups.First().LearningRate, 15);   // like HF's scheduler.step()
        Assert.True(m.parameters().All(p => p.grad is null || p.grad.abs().sum().item<float>() == 0), "gradients must be zeroed");
    }

    [Fact]
    public void Clipping_reports_the_pre_clip_norm_and_scales_to_max()
    {
        using var scope = NewDisposeScope();
        var m = Mlp(3);
        var x = randn(8, 4, generator: new Generator(4)) * 10;
        m.forward(x).pow(2).mean().backward();
        var ps = m.parameters().ToList();
        var manual = Math.Sqrt(ps.Sum(p => p.grad!.pow(2).sum().item<float>()));
        var norm = GradientTools.GlobalNorm(ps);
        Assert.Equal(manual, norm, manual * 1e-5);
        Assert.True(norm > 0.5);
        GradientTools.Clip(ps, norm, 0.5);
        Assert.Equal(0.5, GradientTools.GlobalNorm(ps), 1e-5);
    }

    [Fact]
    public void Non_finite_loss_skips_the_step_and_changes_nothing()
    {
        using var scope = NewDisposeScope();
        var m = Mlp(5);
        using var opt = new PolicyOptimizer(m, Opts.Optimizer, totalSteps: 4);
        var x = randn(8, 4, generator: new Generator(6));
        // One healthy step first, so that the AdamW moments are non-trivial.
        for (int k = 0; k < 2; k++) opt.Backward(m.forward(x).pow(2).mean() / 2);
        opt.Step();
        var weights = Snapshot(m);
        var state = Moments(opt);

        opt.Backward(m.forward(x).pow(2).mean() / 2);
        opt.Backward(m.forward(x).pow(2).mean() * double.NaN);
        var r = opt.Step();
        Assert.True(r.Skipped);
        Assert.Contains("NaN at micro-batch 2", r.SkipReason);
        foreach (var (k, v) in m.state_dict()) Assert.True(v.eq(weights[k]).all().item<bool>(), $"{k} changed");
        // The moments and per-parameter step counts are untouched; only the scheduled rate moved on.
        Assert.Equal(state, Moments(opt));
        Assert.True(m.parameters().All(p => p.grad is null || p.grad.abs().sum().item<float>() == 0), "gradients must be zeroed");
        Assert.Equal(2, opt.StepCount);

        // The next healthy step trains again.
        for (int k = 0; k < 2; k++) opt.Backward(m.forward(x).pow(2).mean() / 2);
        Assert.False(opt.Step().Skipped);
    }

    [Fact]
    public void Non_finite_gradient_with_finite_loss_skips_and_names_the_parameter()
    {
        using var scope = NewDisposeScope();
        var m = Mlp(7);
        using var opt = new PolicyOptimizer(m, Opts.Optimizer with { GradientAccumulation = 1 }, totalSteps: 4);
        var weights = Snapshot(m);
        var w = m.named_parameters().First(p => p.name == "2.weight").parameter;
        // sqrt at 0 has an infinite derivative: the loss is 0, the gradient of 2.weight[0,0] is inf.
        var loss = (w[0, 0] - w[0, 0].detach()).sqrt() + m.forward(ones(2, 4)).sum() * 0;
        Assert.Equal(0, loss.item<float>());
        opt.Backward(loss);
        var r = opt.Step();
        Assert.True(r.Skipped);
        Assert.Equal("non-finite gradient in 2.weight", r.SkipReason);
        Assert.False(double.IsFinite(r.GradNorm));
        foreach (var (k, v) in m.state_dict()) Assert.True(v.eq(weights[k]).all().item<bool>(), $"{k} changed");
    }

    [Fact]
    public void Random_stream_is_restorable_and_unbiased_enough()
    {
        var a = new TrainingRandom(42);
        for (int i = 0; i < 5; i++) a.NextUInt64();
        var state = a.GetState();
        var next = Enumerable.Range(0, 10).Select(_ => a.Next(7)).ToArray();
        var b = new TrainingRandom(0);
        b.SetState(state);
        Assert.Equal(next, Enumerable.Range(0, 10).Select(_ => b.Next(7)).ToArray());
        var counts = new int[4];
        for (int i = 0; i < 40000; i++) counts[a.Next(4)]++;
        Assert.All(counts, c => Assert.InRange(c, 9500, 10500));
        Assert.NotEqual(new TrainingRandom(1).NextUInt64(), new TrainingRandom(2).NextUInt64());
        Assert.Throws<ArgumentException>(() => b.SetState(new ulong[4]));
    }
    /// <summary>The same MLP twice: in float32, and with its weights rounded to bf16 — both starting from the bf16 values.</summary>
    static (nn.Module<Tensor, Tensor> Full, nn.Module<Tensor, Tensor> Half) Pair()
    {
        var half = Mlp(1);
        half.to(ScalarType.BFloat16);
        var full = Mlp(1);
        using (no_grad())
            foreach (var (name, p) in full.named_parameters()) p.copy_(half.get_parameter(name)!.to_type(ScalarType.Float32));
        return (full, half);
    }

    [Fact]
    public void Bf16_weights_train_through_float32_master_weights_that_keep_updates_below_bf16_resolution()
    {
        using var scope = NewDisposeScope();
        var (full, half) = Pair();
        var options = Opts.Optimizer with { LearningRate = 1e-4, GradientAccumulation = 1, WeightDecay = 0 };
        using var opt32 = new PolicyOptimizer(full, options, totalSteps: 100);
        using var opt16 = new PolicyOptimizer(half, options, totalSteps: 100);
        Assert.False(opt32.HasMasterWeights);
        Assert.True(opt16.HasMasterWeights);
        Assert.All(opt16.MasterWeights, m => Assert.Equal(ScalarType.Float32, m.dtype));
        var start = half.parameters().Select(p => p.to_type(ScalarType.Float32).clone()).ToArray();
        var x = randn(8, 4, generator: new Generator(2));
        for (int step = 0; step < 5; step++)
        {
            opt32.Backward(full.forward(x).pow(2).mean());
            opt32.Step();
            opt16.Backward(half.forward(x.to_type(ScalarType.BFloat16)).pow(2).mean());
            opt16.Step();
        }
        Assert.All(opt16.Inner.state_dict().State.Cast<TorchSharp.Modules.AdamW.State>(), st => Assert.Equal(ScalarType.Float32, st.exp_avg_sq.dtype));
        var masters = opt16.MasterWeights;
        var weights = half.parameters().ToArray();
        var fullWeights = full.parameters().ToArray();
        for (int i = 0; i < weights.Length; i++)
        {
            // 5 steps of at most ~lr each: an update of 1e-4 on weights near 0.5 is below bf16's resolution there (2e-3),
            // so only the master weights can hold it; the model's weights are the masters rounded.
            Assert.True(masters[i].sub(start[i]).abs().max().item<float>() > 3e-4, "the master weights moved");
            Assert.True(weights[i].eq(masters[i].to_type(ScalarType.BFloat16)).all().item<bool>());
            Assert.True(masters[i].sub(fullWeights[i]).abs().max().item<float>() < 1e-4, "the masters follow the float32 run");
        }
    }

    [Fact]
    public void The_master_weights_are_saved_with_the_optimizer_state_and_restored_exactly()
    {
        using var scope = NewDisposeScope();
        var (_, half) = Pair();
        var options = Opts.Optimizer with { LearningRate = 1e-4, GradientAccumulation = 1 };
        using var opt = new PolicyOptimizer(half, options, totalSteps: 10);
        var x = randn(8, 4, generator: new Generator(2)).to_type(ScalarType.BFloat16);
        opt.Backward(half.forward(x).pow(2).mean());
        opt.Step();
        using var state = new MemoryStream();
        opt.SaveState(state);

        var (_, resumed) = Pair();
        using (no_grad())
            foreach (var (name, p) in resumed.named_parameters()) p.copy_(half.get_parameter(name)!);
        using var again = new PolicyOptimizer(resumed, options, totalSteps: 10);
        state.Position = 0;
        again.LoadState(state, 1, "memory");
        for (int i = 0; i < opt.MasterWeights.Count; i++)
            Assert.True(opt.MasterWeights[i].eq(again.MasterWeights[i]).all().item<bool>());
        Assert.Equal(Moments(opt), Moments(again));
    }
}
