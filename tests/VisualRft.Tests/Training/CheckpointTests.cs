using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Tests.Training;

[Collection(nameof(BitForBit))]
public class CheckpointTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
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
        var info = Checkpoint.Load<GrpoOptions>(_run, b.Model, b.Optimizer, b.Random, b.Generator);
        Assert.Equal((2, Total, OptimizerTests.Opts), (info.Step, info.TotalSteps, info.Options));
        AssertSame(a, b);
        Assert.Equal(a.Optimizer.NextLearningRate, b.Optimizer.NextLearningRate);
    }

    [Fact]
    public void Resume_equals_the_uninterrupted_run()
    {
        using var oneThread = BitForBit.OneThread();
        using var straight = new Run(3).Init();
        straight.Train(Total);

        using (var first = new Run(3).Init())
        {
            first.Train(2);
            Checkpoint.Save(_run, first.Model, first.Optimizer, OptimizerTests.Opts, first.Random, first.Generator);
        }
        using var resumed = new Run(99).Init();   // new objects, other weights and seeds: everything must come from the checkpoint
        Checkpoint.Load<GrpoOptions>(_run, resumed.Model, resumed.Optimizer, resumed.Random, resumed.Generator);
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
            null, null, beforeOperation: op => { if (op == "write rng.safetensors") throw new IOException("simulated crash"); }));
        Assert.Equal("simulated crash", e.Message);
        // A killed process would also leave a half-written temporary folder; make one by hand.
        var stale = Path.Combine(_run, ".checkpoint-000003.tmp-dead");
        Directory.CreateDirectory(stale);
        File.WriteAllBytes(Path.Combine(stale, "model.safetensors"), new byte[100]);

        Assert.Equal(Path.Combine(_run, "checkpoint-000002"), Checkpoint.Resolve(_run));
        Assert.False(Directory.Exists(Path.Combine(_run, "checkpoint-000003")));
        using var b = new Run(5).Init();
        Assert.Equal(2, Checkpoint.Load<GrpoOptions>(_run, b.Model, b.Optimizer, b.Random, b.Generator).Step);
        foreach (var (k, v) in b.Model.state_dict()) Assert.True(v.eq(expected[k]).all().item<bool>(), $"{k} differs");

        // The next save succeeds and clears the debris.
        Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator);
        Assert.Equal(Path.Combine(_run, "checkpoint-000003"), Checkpoint.Resolve(_run));
        Assert.Empty(Directory.GetDirectories(_run, ".checkpoint-*"));
    }

    static Dictionary<string, Tensor> Weights(Run r) => r.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    static bool Same(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) => a.All(kv => kv.Value.eq(b[kv.Key]).all().item<bool>());

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        if (!Directory.Exists(from)) return;   // killed before the run folder existed
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    /// <summary>
    /// A kill can stop a save before any of its file-system operations. The hook copies the run folder at each of those
    /// points — exactly what a kill there would leave — and every copy must resolve to a complete checkpoint holding the
    /// weights of the previous save or of this one, and take the next save cleanly (no hidden leftovers). Saves covered:
    /// the first one, a new step, the same step twice more (both folder names of a re-save), one over a killed save's
    /// debris, and one that prunes by retention.
    /// </summary>
    [Fact]
    public void Every_kill_point_of_every_save_leaves_a_loadable_latest()
    {
        using var a = new Run(10).Init();
        using var b = new Run(11).Init();
        var kills = _run + "-kills";
        int points = 0;
        Dictionary<string, Tensor>? previous = null;
        try
        {
            void SaveAndKillEverywhere(CheckpointRetention? retention = null, double? metric = null)
            {
                var current = Weights(a);
                var snapshots = new List<(string Folder, string Operation)>();
                Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, a.Random, a.Generator, retention, metric, op =>
                {
                    var copy = Path.Combine(kills, $"{points++:D3}");
                    CopyFolder(_run, copy);
                    snapshots.Add((copy, op));
                });
                Assert.True(snapshots.Count >= 8, $"only {snapshots.Count} operations seen");
                foreach (var (folder, operation) in snapshots)
                {
                    if (previous is null && !Directory.GetDirectories(folder, "checkpoint-*").Any())
                        continue;   // killed during the very first save: there is nothing to load yet
                    var info = Checkpoint.Load<GrpoOptions>(folder, b.Model, b.Optimizer, b.Random, b.Generator);
                    var loaded = Weights(b);
                    Assert.True(Same(loaded, current) || (previous is not null && Same(loaded, previous)),
                        $"killed before '{operation}': {info.Folder} holds neither the previous nor the new weights");
                    var saved = Checkpoint.Save(folder, b.Model, b.Optimizer, OptimizerTests.Opts, b.Random, b.Generator);
                    Assert.Equal(saved, Checkpoint.Resolve(folder));
                    Assert.Empty(Directory.GetFileSystemEntries(folder, ".*"));
                }
                previous = current;
            }

            a.Train(1);
            SaveAndKillEverywhere();                      // first save
            a.Train(1);
            SaveAndKillEverywhere();                      // a new step
            Assert.Equal(Path.Combine(_run, "checkpoint-000002"), Checkpoint.Resolve(_run));
            a.Random.NextDouble();                        // the same step again, different state: the other folder name
            SaveAndKillEverywhere();
            Assert.Equal(Path.Combine(_run, "checkpoint-000002-b"), Checkpoint.Resolve(_run));
            Assert.False(Directory.Exists(Path.Combine(_run, "checkpoint-000002")));
            a.Random.NextDouble();                        // and again: back to the first name
            SaveAndKillEverywhere();
            Assert.Equal(Path.Combine(_run, "checkpoint-000002"), Checkpoint.Resolve(_run));
            Directory.CreateDirectory(Path.Combine(_run, ".checkpoint-000003.tmp-dead"));   // a killed save's debris
            File.WriteAllText(Path.Combine(_run, ".latest.tmp-dead"), "checkpoint-000003\n");
            a.Train(1);
            SaveAndKillEverywhere();
            a.Train(1);
            SaveAndKillEverywhere(new CheckpointRetention(KeepLast: 1), metric: 0.5);
            Assert.Equal(["checkpoint-000004"], Directory.GetDirectories(_run).Select(Path.GetFileName));
            Assert.True(points > 40, $"{points} kill points");
            output.WriteLine($"{points} kill points over 6 saves, each loaded and saved again");
        }
        finally
        {
            if (Directory.Exists(kills)) Directory.Delete(kills, recursive: true);
        }
    }

    [Fact]
    public void Retention_keeps_the_last_checkpoints_and_the_best()
    {
        using var a = new Run(12).Init();
        double[] metrics = [0.1, 0.9, 0.2, 0.3, 0.4];
        foreach (var m in metrics.Take(Total - 1))
        {
            a.Train(1);
            Checkpoint.Save(_run, a.Model, a.Optimizer, OptimizerTests.Opts, metric: m, retention: new CheckpointRetention(KeepLast: 2));
        }
        Assert.Equal(["checkpoint-000002", "checkpoint-000004", "checkpoint-000005"], Directory.GetDirectories(_run).Select(Path.GetFileName).Order());
        // Lower is better, without the best: only the last one stays (`latest` names it).
        Assert.Equal(2, Checkpoint.Prune(_run, new CheckpointRetention(KeepLast: 1, KeepBest: false)).Count);
        Assert.Equal(Path.Combine(_run, "checkpoint-000005"), Assert.Single(Directory.GetDirectories(_run)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Checkpoint.Prune(_run, new CheckpointRetention(KeepLast: 0)));
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
            Assert.Contains("optimizer steps", Assert.Throws<InvalidDataException>(() => Checkpoint.Load<GrpoOptions>(_run, other.Model, other.Optimizer)).Message);
        }
        // A model with other parameter names.
        using (var wrong = nn.Sequential(nn.Linear(4, 8)))
        using (var opt = new PolicyOptimizer(wrong, OptimizerTests.Opts.Optimizer, Total))
            Assert.Contains("missing", Assert.Throws<InvalidDataException>(() => Checkpoint.Load<GrpoOptions>(_run, wrong, opt)).Message);
        // A truncated file.
        var optPath = Path.Combine(folder, "optimizer.bin");
        var bytes = File.ReadAllBytes(optPath);
        File.WriteAllBytes(optPath, bytes[..(bytes.Length / 2)]);
        Assert.Contains("optimizer.bin", Assert.Throws<InvalidDataException>(() => Checkpoint.ReadInfo<GrpoOptions>(_run)).Message);
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
