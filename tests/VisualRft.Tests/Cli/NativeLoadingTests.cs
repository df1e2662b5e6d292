using System.Diagnostics;

namespace VisualRft.Tests.Cli;

/// <summary>
/// A wrong libtorch earlier on the library path (Debian's python3-torch, a user's LD_LIBRARY_PATH) must not be picked up:
/// TorchRuntime loads the package's own libraries by absolute path first. The decoys are real ELF libraries without
/// torch's symbols, so a process that resolves libtorch by name fails on a missing symbol.
/// </summary>
public class NativeLoadingTests
{
    [Fact]
    public void Torch_loads_the_packages_libtorch_when_a_decoy_is_on_the_library_path()
    {
        var decoys = Directory.CreateTempSubdirectory("vrft-decoy-").FullName;
        try
        {
            var gomp = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"), "libgomp*.so*").First();
            foreach (var name in new[] { "libtorch_cpu.so", "libc10.so", "libtorch.so" }) File.Copy(gomp, Path.Combine(decoys, name));
            var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "info"])
                { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["LD_LIBRARY_PATH"] = decoys;
            using var p = Process.Start(start)!;
            var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, output);
            Assert.Contains("libtorch 2.10.0 from " + Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"), output);
        }
        finally { Directory.Delete(decoys, recursive: true); }
    }
}
