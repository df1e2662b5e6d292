using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Tests.Training;

public class CheckpointTests : IDisposable
{
    static CheckpointTests() => TorchRuntime.EnsureLoaded();

    readonly string _run = Path.Combine(Path.GetTempPath(), $"vrft-ckpt-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_run)) Directory.Delete(_run, recursive: true);
    }

    const int Total = 6;

    /// <summary>Everything a run owns, built fresh (different seeds give different starting states on purpose).</summary>
    sealed class Run(ulong seed) : IDisposable
    {
        public readonly nn.Module<Tensor, Tensor> Model = OptimizerTests.Mlp(seed);
        public readonly TrainingRandom Random = new((long)seed);
        public readonly Generator Generator = new(seed + 100);
        public PolicyOptimizer Optimizer = null!;

        public Run Init() { Optimizer = new PolicyOptimizer(Model, OptimizerTests.Opts.Optimizer, Total); return this; }

        /// <summary>A deterministic fake training loop: data from the generator, a C#-side draw, AdamW + schedule + clipping.</summary>
        public void Train(int steps)
        {
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                while (!Optimizer.IsStepDue)
                {
                    var x = randn(6, 4, generator: Generator);
                    var y = x.sum(1, keepdim: true) * (1 + Random.NextDouble());
                    Optimizer.Backward((Model.forward(x) - y).pow(2).mean() / OptimizerTests.Opts.GradientAccumulation);
                }
                Assert.False(Optimizer.Step().Skipped);
            }
        }

        public byte[] OptimizerBytes()
        {
            using var ms = new MemoryStream();
            Optimizer.SaveState(ms);
            return ms.ToArray();
        }

        public void Dispose() { Optimizer.Dispose(); Model.Dispose(); Generator.Dispose(); }
    }

    static void AssertSame(Run a, Run b)
    {
        foreach (var (k, v) in a.Model.state_dict())
            Assert.True(v.eq(b.Model.state_dict()[k]).all().item<bool>(), $"{k} differs");
        Assert.Equal(a.OptimizerBytes(), b.OptimizerBytes());
        Assert.Equal(a.Optimizer.StepCount, b.Optimizer.StepCount);
        Assert.Equal(a.Random.GetState(), b.Random.GetState());
        Assert.True(a.Generator.get_state().eq(b.Generator.get_state()).all().item<bool>());
    }

    [Fact]
    public void Save_then_load_restores_everything()
    {
        using var a = new Run(1).Init();
        a.Train(2);
        var folder = Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator);
        Assert.Equal(Path.Combine(_run, "checkpoint-000002"), folder);
        Assert.Equal("checkpoint-000002", File.ReadAllText(Path.Combine(_run, Checkpoint.LatestFile)).Trim());

        using var b = new Run(2).Init();
        var info = Checkpoint.Load(_run, b.Model, b.Optimizer, b.Random, b.Generator);
        Assert.Equal((2, Total, OptimizerTests.Opts), (info.Step, info.TotalSteps, info.Options));
        AssertSame(a, b);
        Assert.Equal(a.Optimizer.NextLearningRate, b.Optimizer.NextLearningRate);
    }

    [Fact]
    public void Resume_equals_the_uninterrupted_run()
    {
        using var straight = new Run(3).Init();
        straight.Train(Total);

        using (var first = new Run(3).Init())
        {
            first.Train(2);
            Checkpoint.Save(_run, first.Model, first.Optimizer, OptimizerTests.Opts, first.Random, first.Generator);
        }
        using var resumed = new Run(99).Init();   // new objects, other weights and seeds: everything must come from the checkpoint
        Checkpoint.Load(_run, resumed.Model, resumed.Optimizer, resumed.Random, resumed.Generator);
        resumed.Train(Total - 2);
        AssertSame(straight, resumed);
    }

    [Fact]
    public void A_crash_during_a_save_leaves_the_previous_checkpoint_loadable()
    {
        using var a = new Run(4).Init();
        a.Train(2);
        Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator);
        var expected = a.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        a.Train(1);

        // Injected crash after half the files of checkpoint 3.
        var e = Assert.Throws<IOException>(() => Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator,
            onFileWritten: f => { if (f == "optimizer.bin") throw new IOException("simulated crash"); }));
        Assert.Equal("simulated crash", e.Message);
        // A killed process would also leave a half-written temporary folder; make one by hand.
        var stale = Path.Combine(_run, ".checkpoint-000003.tmp-dead");
        Directory.CreateDirectory(stale);
        File.WriteAllBytes(Path.Combine(stale, "model.safetensors"), new byte[100]);

        Assert.Equal(Path.Combine(_run, "checkpoint-000002"), Checkpoint.Resolve(_run));
        Assert.False(Directory.Exists(Path.Combine(_run, "checkpoint-000003")));
        using var b = new Run(5).Init();
        Assert.Equal(2, Checkpoint.Load(_run, b.Model, b.Optimizer, b.Random, b.Generator).Step);
        foreach (var (k, v) in b.Model.state_dict()) Assert.True(v.eq(expected[k]).all().item<bool>(), $"{k} differs");

        // The next save succeeds and clears the debris.
        Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator);
        Assert.Equal(Path.Combine(_run, "checkpoint-000003"), Checkpoint.Resolve(_run));
        Assert.Empty(Directory.GetDirectories(_run, ".checkpoint-*"));
    }

    [Fact]
    public void A_crash_between_rename_and_latest_still_finds_a_complete_checkpoint()
    {
        using var a = new Run(6).Init();
        a.Train(1);
        Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts);
        File.Delete(Path.Combine(_run, Checkpoint.LatestFile));
        Assert.Equal(Path.Combine(_run, "checkpoint-000001"), Checkpoint.Resolve(_run));
    }

    [Fact]
    public void Damaged_checkpoints_give_clear_errors()
    {
        using var a = new Run(7).Init();
        a.Train(1);
        var folder = Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator);

        // Wrong run length: the schedule would differ.
        using (var other = new Run(8))
        {
            other.Optimizer = new PolicyOptimizer(other.Model, OptimizerTests.Opts.Optimizer, Total + 1);
            Assert.Contains("optimizer steps", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(_run, other.Model, other.Optimizer)).Message);
        }
        // A model with other parameter names.
        using (var wrong = nn.Sequential(nn.Linear(4, 8)))
        using (var opt = new PolicyOptimizer(wrong, OptimizerTests.Opts.Optimizer, Total))
            Assert.Contains("missing", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(_run, wrong, opt)).Message);
        // A truncated file.
        var optPath = Path.Combine(folder, "optimizer.bin");
        var bytes = File.ReadAllBytes(optPath);
        File.WriteAllBytes(optPath, bytes[..(bytes.Length / 2)]);
        Assert.Contains("optimizer.bin", Assert.Throws<InvalidDataException>(() => Checkpoint.ReadInfo(_run)).Message);
        // `latest` naming a folder that is not there.
        File.WriteAllText(Path.Combine(_run, Checkpoint.LatestFile), "checkpoint-000009\n");
        Assert.Contains("checkpoint-000009", Assert.Throws<InvalidDataException>(() => Checkpoint.Resolve(_run)).Message);
        Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Resolve(Path.Combine(_run, "nope")));
    }

    [Fact]
    public void Saving_mid_accumulation_is_refused()
    {
        using var a = new Run(9).Init();
        a.Optimizer.Backward(a.Model.forward(ones(2, 4)).sum());
        Assert.Throws<InvalidOperationException>(() => Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts));
    }
}
