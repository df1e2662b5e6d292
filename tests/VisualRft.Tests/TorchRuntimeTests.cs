using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;
using VisualRft.Torch;

namespace VisualRft.Tests;

public class TorchRuntimeTests
{
    /// <summary>A folder with empty files of the given names, and the version file of its kind.</summary>
    static string Folder(string root, string relative, string[] libraries, (string Path, string Text)? versionFile = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, relative)).FullName;
        foreach (var l in libraries) File.WriteAllText(Path.Combine(dir, l), "");
        if (versionFile is { } v) File.WriteAllText(Path.Combine(root, v.Path), v.Text);
        return dir;
    }

    static readonly string[] Libraries = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    [Fact]
    public void The_backend_is_the_package_by_default_and_VRFT_LIBTORCH_requests_are_checked_before_anything_loads()
    {
        var package = LibTorchBackend.Choose(_ => null);
        Assert.Equal(("package", LibTorchBackend.Expected, false, false), (package.Source, package.Version, package.HasCuda, package.ShimNamed));
        Assert.Equal("2.10", string.Join('.', LibTorchBackend.Expected.Split('.').Take(2)));

        var root = Directory.CreateTempSubdirectory("vrft-backend-").FullName;
        try
        {
            LibTorchBackend Choose(string? libtorch, string? shim = null, Func<string>? python = null) =>
                LibTorchBackend.Choose(v => v switch { "VRFT_LIBTORCH" => libtorch, "VRFT_TORCHSHARP_NATIVE" => shim, _ => null }, python);
            string Refusal(string? libtorch, string? shim = null, Func<string>? python = null) =>
                Assert.Throws<LibTorchBackendException>(() => Choose(libtorch, shim, python)).Message;

            Assert.Equal($"VRFT_LIBTORCH={Path.Combine(root, "none")}: no such folder", Refusal(Path.Combine(root, "none")));
            var empty = Folder(root, "empty", []);
            Assert.StartsWith($"VRFT_LIBTORCH={empty}: libc10.so is missing", Refusal(empty));
            var unknown = Folder(root, "unknown/lib", Libraries);
            Assert.Contains("cannot tell its libtorch version", Refusal(unknown));

            // a PyTorch install with CUDA, of the right minor version
            var pip = Folder(root, "site-packages/torch/lib", [.. Libraries, "libtorch_cuda.so", "libc10_cuda.so"], ("site-packages/torch/version.py", "__version__ = '2.10.1+cu128'\n"));
            var chosen = Choose(pip);
            Assert.Equal(("VRFT_LIBTORCH", pip, "2.10.1+cu128", true), (chosen.Source, chosen.Folder, chosen.Version, chosen.HasCuda));
            Assert.Equal($"libtorch 2.10.1+cu128 (VRFT_LIBTORCH, CUDA) from {pip}", chosen.ToString());
            Assert.Equal("VRFT_LIBTORCH=auto", Choose("auto", python: () => pip).Source);

            // Debian's python3-torch 1.13, and a newer PyTorch: refused unless a shim built for it is named
            var debian = Folder(root, "dist-packages/torch/lib", Libraries, ("dist-packages/torch/version.py", "__version__ = '1.13.1'\n"));
            Assert.StartsWith($"VRFT_LIBTORCH={debian} holds libtorch 1.13.1, but TorchSharp", Refusal(debian));
            var newer = Folder(root, "py311/torch/lib", Libraries, ("py311/torch/version.py", "__version__ = \"2.11.0+cu130\"\n"));
            Assert.Contains("set VRFT_TORCHSHARP_NATIVE to a libLibTorchSharp.so built against 2.11.0+cu130", Refusal(newer));
            var shim = Path.Combine(root, "libLibTorchSharp.so");
            File.WriteAllText(shim, "");
            Assert.Equal((shim, true), (Choose(newer, shim).Shim, Choose(newer, shim).ShimNamed));
            Assert.Equal($"VRFT_TORCHSHARP_NATIVE={Path.Combine(root, "gone.so")}: no such file", Refusal(newer, Path.Combine(root, "gone.so")));
            Assert.Contains("python3 could not import torch (ModuleNotFoundError",
                Refusal("auto", python: () => throw new LibTorchBackendException("VRFT_LIBTORCH=auto: python3 could not import torch (ModuleNotFoundError: No module named 'torch')")));

            // the version a NuGet package's folder and a libtorch archive state
            Assert.Equal("2.10.0.1", LibTorchBackend.VersionOf("/n/.nuget/packages/libtorch-cuda-12.8-linux-x64/2.10.0.1/runtimes/linux-x64/native"));
            Folder(root, "libtorch/lib", Libraries, ("libtorch/build-version", "2.10.0+cpu\n"));
            Assert.Equal("2.10.0+cpu", LibTorchBackend.VersionOf(Path.Combine(root, "libtorch", "lib")));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void VRFT_DEVICE_picks_the_device_or_says_why_it_cannot()
    {
        TorchRuntime.EnsureLoaded();   // a Device is a torch object
        Assert.Equal(DeviceType.CPU, TorchRuntime.ParseDevice(null, cudaAvailable: false, 0).type);
        Assert.Equal(DeviceType.CUDA, TorchRuntime.ParseDevice(null, cudaAvailable: true, 1).type);
        Assert.Equal(DeviceType.CPU, TorchRuntime.ParseDevice("cpu", cudaAvailable: true, 1).type);
        var second = TorchRuntime.ParseDevice("cuda:1", cudaAvailable: true, 2);
        Assert.Equal((DeviceType.CUDA, 1), (second.type, second.index));
        Assert.StartsWith("VRFT_DEVICE=cuda, but no CUDA device is usable", Assert.Throws<LibTorchBackendException>(() => TorchRuntime.ParseDevice("cuda", false, 0)).Message);
        Assert.Equal("VRFT_DEVICE=cuda:2: only 2 CUDA device(s) are visible", Assert.Throws<LibTorchBackendException>(() => TorchRuntime.ParseDevice("cuda:2", true, 2)).Message);
        Assert.Equal("VRFT_DEVICE=tpu: expected cpu, cuda or cuda:N", Assert.Throws<LibTorchBackendException>(() => TorchRuntime.ParseDevice("tpu", true, 1)).Message);
    }

    [Fact]
    public void Torch_loads_and_computes_after_the_Debian_12_fix()
    {
        TorchRuntime.EnsureLoaded();
        using var a = torch.ones(2, 3);
        Assert.Equal(6f, a.sum().item<float>());
        Assert.InRange(TorchRuntime.Threads, 1, 2);
    }

    [Fact]
    public void Patching_is_idempotent_names_the_shim_LibTorchSharp_so_and_ignores_non_elf_files()
    {
        Assert.False(NativeShim.PatchElf(new byte[100]));
        Assert.Null(NativeShim.SonameOf(new byte[100]));
        var shim = Path.Combine(Path.GetDirectoryName(typeof(torch).Assembly.Location)!, "..", "..", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(shim)) shim = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var bytes = File.ReadAllBytes(shim);
        NativeShim.PatchElf(bytes);
        Assert.Equal("LibTorchSharp.so", NativeShim.SonameOf(bytes));
        Assert.False(NativeShim.PatchElf(bytes));   // a second pass finds nothing left to change
        var c10 = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libc10.so"));
        Assert.Equal("libc10.so", NativeShim.SonameOf(c10));   // another library keeps its name
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
        using (FinalizerGate.Hold())
        {
            Assert.True(FinalizerGate.Held);
            using (FinalizerGate.Hold()) { }       // nested: ending it leaves the outer section's gate closed
            Assert.True(FinalizerGate.Held);
            Drop(finalized);
            var gcs = GC.CollectionCount(0);
            GC.Collect();
            Assert.True(GC.CollectionCount(0) > gcs);       // collections still run...
            Assert.False(finalized.Wait(TimeSpan.FromMilliseconds(500)));   // ...but the dead object's finalizer waits
        }
        Assert.False(FinalizerGate.Held);
        Assert.True(finalized.Wait(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_long_outer_section_lets_queued_finalizers_run_when_a_nested_one_starts()
    {
        var recycle = FinalizerGate.GateRecycleAfter;
        FinalizerGate.GateRecycleAfter = TimeSpan.FromMilliseconds(100);
        try
        {
            var finalized = new ManualResetEventSlim();
            using (FinalizerGate.Hold())
            {
                Drop(finalized);
                GC.Collect();
                Assert.False(finalized.Wait(TimeSpan.FromMilliseconds(300)));
                using (FinalizerGate.Hold())
                {
                    Assert.True(finalized.IsSet);                   // drained before the nested section began
                    Assert.True(FinalizerGate.Held);       // and the gate is closed again
                }
            }
        }
        finally { FinalizerGate.GateRecycleAfter = recycle; }
    }
}
