using TorchSharp;
using VisualRft.Torch;

namespace VisualRft.Tests;

public class TorchRuntimeTests
{
    [Fact]
    public void Torch_loads_and_computes_after_the_Debian_12_fix()
    {
        TorchRuntime.EnsureLoaded();
        using var a = torch.ones(2, 3);
        Assert.Equal(6f, a.sum().item<float>());
        Assert.InRange(TorchRuntime.Threads, 1, 2);
    }

    [Fact]
    public void Patching_is_idempotent_and_ignores_non_elf_files()
    {
        Assert.False(TorchRuntime.PatchElf(new byte[100]));
        var shim = Path.Combine(Path.GetDirectoryName(typeof(torch).Assembly.Location)!, "..", "..", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(shim)) shim = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var bytes = File.ReadAllBytes(shim);
        TorchRuntime.PatchElf(bytes);
        Assert.False(TorchRuntime.PatchElf(bytes));   // a second pass finds nothing left to change
    }
}

/// <summary>The no-GC region is process-wide: this runs alone, after the parallel tests.</summary>
[CollectionDefinition(nameof(QuietGcTests), DisableParallelization = true)]
public class QuietGcCollection { }

[Collection(nameof(QuietGcTests))]
public class QuietGcTests
{
    [Fact]
    public void Sections_hold_the_collector_off_and_nest()
    {
        var before = GC.CollectionCount(0);
        using (TorchRuntime.QuietGc())
        {
            var gcsAtStart = GC.CollectionCount(0);
            Assert.True(gcsAtStart > before);                  // it collects up front
            using (TorchRuntime.QuietGc()) { }                 // nested: a no-op that leaves the outer section on
            for (int i = 0; i < 10_000; i++) _ = new byte[100];
            Assert.Equal(gcsAtStart, GC.CollectionCount(0));
        }
        Assert.NotEqual(System.Runtime.GCLatencyMode.NoGCRegion, System.Runtime.GCSettings.LatencyMode);
    }
}
