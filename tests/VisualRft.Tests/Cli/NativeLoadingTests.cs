using System.Diagnostics;
using System.IO.Compression;

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
            Assert.Contains("libtorch 2.10.0 (package) from " + Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"), output);
        }
        finally { Directory.Delete(decoys, recursive: true); }
    }

    static (int Code, string Output, string Error) Info(string libtorch) => Info(("VRFT_LIBTORCH", libtorch));

    static (int Code, string Output, string Error) Info(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vrft.dll"), "info"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var p = Process.Start(start)!;
        var error = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, error.Result);
    }

    [Fact]
    public void VRFT_LIBTORCH_loads_a_libtorch_archive_from_its_folder_and_refuses_a_wrong_version_in_one_line()
    {
        var root = Directory.CreateTempSubdirectory("vrft-libtorch-").FullName;
        try
        {
            // the package's libtorch-cpu laid out as a libtorch archive (lib/ + build-version), copied: other files than the
            // app's, which TorchSharp's own load by name must not map beside them (a second libtorch_cpu aborts the process)
            var lib = Directory.CreateDirectory(Path.Combine(root, "libtorch", "lib")).FullName;
            var package = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
            foreach (var file in Directory.GetFiles(package).Where(f => Path.GetFileName(f) is "libc10.so" or "libtorch_cpu.so" or "libtorch.so" || f.Contains("libgomp")))
                File.Copy(file, Path.Combine(lib, Path.GetFileName(file)));
            File.WriteAllText(Path.Combine(root, "libtorch", "build-version"), "2.10.0+cpu\n");
            var (code, output, error) = Info(lib);
            Assert.True(code == 0, output + error);
            Assert.Contains($"libtorch 2.10.0+cpu (VRFT_LIBTORCH) from {lib}", output);
            Assert.Contains($"libtorch_cpu mapped: {Path.Combine(lib, "libtorch_cpu.so")}{Environment.NewLine}", output);

            // Debian's python3-torch: torch/lib beside torch/version.py saying 1.13
            var debian = Directory.CreateDirectory(Path.Combine(root, "dist-packages", "torch", "lib")).FullName;
            foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" }) File.WriteAllText(Path.Combine(debian, name), "");
            File.WriteAllText(Path.Combine(root, "dist-packages", "torch", "version.py"), "__version__ = '1.13.1'\ndebug = False\n");
            (code, _, error) = Info(debian);
            Assert.Equal(2, code);
            Assert.StartsWith($"vrft info: VRFT_LIBTORCH={debian} holds libtorch 1.13.1, but TorchSharp", error);
            Assert.Single(error.Trim().Split('\n'));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void VRFT_TORCHSHARP_NATIVE_is_the_one_shim_the_process_maps_and_a_library_of_another_name_is_refused()
    {
        var root = Directory.CreateTempSubdirectory("vrft-shim-").FullName;
        try
        {
            // the shim as the TorchSharp package ships it (soname libLibTorchSharp.so), outside every folder TorchSharp searches;
            // TorchSharp's own load by name would map the app's copy beside it
            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var version = typeof(TorchSharp.torch).Assembly.GetName().Version!;
            var shim = Path.Combine(root, "libLibTorchSharp.so");
            using (var nupkg = ZipFile.OpenRead(Path.Combine(packages, "torchsharp", $"{version.ToString(3)}", $"torchsharp.{version.ToString(3)}.nupkg")))
                nupkg.GetEntry("runtimes/linux-x64/native/libLibTorchSharp.so")!.ExtractToFile(shim);
            var (code, output, error) = Info(("VRFT_TORCHSHARP_NATIVE", shim));
            Assert.True(code == 0, output + error);
            Assert.Contains($"TorchSharp native shim: {shim}{Environment.NewLine}", output);   // /proc/self/maps: that one, and only it

            var c10 = Path.Combine(root, "libc10.so");
            File.Copy(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libc10.so"), c10);
            (code, _, error) = Info(("VRFT_TORCHSHARP_NATIVE", c10));
            Assert.Equal(2, code);
            Assert.StartsWith($"vrft info: VRFT_TORCHSHARP_NATIVE={c10}: its soname is libc10.so, so TorchSharp would load its own shim beside it", error);
            Assert.Single(error.Trim().Split('\n'));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
