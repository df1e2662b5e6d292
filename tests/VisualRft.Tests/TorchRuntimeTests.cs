using System.Runtime.CompilerServices;
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

/// <summary>The finalizer gate is process-wide: this runs alone, after the parallel tests.</summary>
[CollectionDefinition(nameof(HoldFinalizersTests), DisableParallelization = true)]
public class HoldFinalizersCollection { }

[Collection(nameof(HoldFinalizersTests))]
public class HoldFinalizersTests
{
    sealed class Finalizable(ManualResetEventSlim finalized)
    {
        ~Finalizable() => finalized.Set();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void Drop(ManualResetEventSlim finalized) => _ = new Finalizable(finalized);

    [Fact]
    public void Finalizers_wait_until_the_last_section_ends()
    {
        var finalized = new ManualResetEventSlim();
        using (TorchRuntime.HoldFinalizers())
        {
            Assert.True(TorchRuntime.FinalizersHeld);
            using (TorchRuntime.HoldFinalizers()) { }       // nested: ending it leaves the outer section's gate closed
            Assert.True(TorchRuntime.FinalizersHeld);
            Drop(finalized);
            var gcs = GC.CollectionCount(0);
            GC.Collect();
            Assert.True(GC.CollectionCount(0) > gcs);       // collections still run...
            Assert.False(finalized.Wait(TimeSpan.FromMilliseconds(500)));   // ...but the dead object's finalizer waits
        }
        Assert.False(TorchRuntime.FinalizersHeld);
        Assert.True(finalized.Wait(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_long_outer_section_lets_queued_finalizers_run_when_a_nested_one_starts()
    {
        var recycle = TorchRuntime.GateRecycleAfter;
        TorchRuntime.GateRecycleAfter = TimeSpan.FromMilliseconds(100);
        try
        {
            var finalized = new ManualResetEventSlim();
            using (TorchRuntime.HoldFinalizers())
            {
                Drop(finalized);
                GC.Collect();
                Assert.False(finalized.Wait(TimeSpan.FromMilliseconds(300)));
                using (TorchRuntime.HoldFinalizers())
                {
                    Assert.True(finalized.IsSet);                   // drained before the nested section began
                    Assert.True(TorchRuntime.FinalizersHeld);       // and the gate is closed again
                }
            }
        }
        finally { TorchRuntime.GateRecycleAfter = recycle; }
    }
}
