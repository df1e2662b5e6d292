using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using TorchSharp;

namespace VisualRft.Torch;

/// <summary>
/// The libtorch this process loads, chosen once before the first torch call (<see cref="Choose"/>):
/// <list type="bullet">
/// <item><c>VRFT_LIBTORCH=&lt;dir&gt;</c>: a local PyTorch (<c>…/site-packages/torch/lib</c>), a libtorch archive's
/// <c>lib/</c>, or a NuGet libtorch package's native folder (e.g. libtorch-cuda-12.8-linux-x64);
/// <c>VRFT_LIBTORCH=auto</c>: the lib folder of <c>python3 -c "import torch"</c>. Its version must be the one TorchSharp
/// was built for (<see cref="Expected"/>), unless <c>VRFT_TORCHSHARP_NATIVE</c> names a <c>libLibTorchSharp.so</c> built
/// against it;</item>
/// <item>otherwise the libtorch-cpu package this one references, as found next to the app or in the NuGet cache.</item>
/// </list>
/// The libraries are loaded by absolute path in dependency order, so that nothing else on the library path (Debian's
/// python3-torch puts a libtorch 1.13 in /usr/lib/x86_64-linux-gnu) can stand in for them.
/// </summary>
/// <param name="Source">What chose it: <c>VRFT_LIBTORCH</c>, <c>VRFT_LIBTORCH=auto</c> or <c>package</c>.</param>
/// <param name="Folder">The folder of libtorch_cpu.so; null when TorchSharp's own search decides (an unknown layout).</param>
/// <param name="Version">libtorch's version as its folder states it, e.g. 2.10.0+cu128.</param>
/// <param name="Shim">The TorchSharp shim loaded after libtorch (null: TorchSharp's own).</param>
/// <param name="HasCuda">The folder holds libtorch_cuda.so.</param>
/// <param name="ShimNamed"><see cref="Shim"/> is the one <c>VRFT_TORCHSHARP_NATIVE</c> names: it must be the only shim mapped.</param>
public sealed record LibTorchBackend(string Source, string? Folder, string Version, string? Shim, bool HasCuda, bool ShimNamed = false)
{
    public const string LibTorchVariable = "VRFT_LIBTORCH";
    public const string ShimVariable = "VRFT_TORCHSHARP_NATIVE";
    public const string DeviceVariable = "VRFT_DEVICE";

    /// <summary>The libtorch version this build's TorchSharp was made for (Directory.Build.props: LibTorchVersion).</summary>
    public static string Expected { get; } = typeof(LibTorchBackend).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "LibTorchVersion")?.Value ?? "";

    /// <summary>The backend <paramref name="environment"/> asks for; a request that cannot work is refused in one line
    /// (<see cref="LibTorchBackendException"/>) naming the folder, file or version and what to do.</summary>
    public static LibTorchBackend Choose(Func<string, string?> environment, Func<string>? pythonTorchLib = null)
    {
        var shim = environment(ShimVariable) is { Length: > 0 } s ? Path.GetFullPath(s) : null;
        if (shim is not null && !File.Exists(shim)) throw new LibTorchBackendException($"{ShimVariable}={shim}: no such file");
        var requested = environment(LibTorchVariable);
        if (string.IsNullOrWhiteSpace(requested))
        {
            var package = PackageFolders().FirstOrDefault(d => File.Exists(Path.Combine(d, "libtorch_cpu.so")));
            return new("package", package, Expected, shim ?? NativeShim.CandidatePaths().FirstOrDefault(), false, shim is not null);
        }
        var auto = requested.Trim() == "auto";
        var folder = Path.GetFullPath(auto ? (pythonTorchLib ?? PythonTorchLib)() : requested);
        var what = auto ? $"{LibTorchVariable}=auto ({folder})" : $"{LibTorchVariable}={folder}";
        if (!Directory.Exists(folder)) throw new LibTorchBackendException($"{what}: no such folder");
        foreach (var library in Required)
            if (!File.Exists(Path.Combine(folder, library)))
                throw new LibTorchBackendException($"{what}: {library} is missing; point it at the folder that holds libtorch_cpu.so (a PyTorch install's torch/lib)");
        var version = VersionOf(folder) ?? throw new LibTorchBackendException(
            $"{what}: cannot tell its libtorch version (looked for ../version.py of a PyTorch install, ../build-version of a libtorch archive, a NuGet package path)");
        if (!SameMinor(version, Expected) && shim is null)
            throw new LibTorchBackendException($"{what} holds libtorch {version}, but TorchSharp {typeof(torch).Assembly.GetName().Version} needs {Expected}: "
                + $"install PyTorch {Minor(Expected)}.x, or set {ShimVariable} to a libLibTorchSharp.so built against {version} (bench/gpu builds one)");
        return new(auto ? $"{LibTorchVariable}=auto" : LibTorchVariable, folder, version, shim ?? NativeShim.CandidatePaths().FirstOrDefault(),
            File.Exists(Path.Combine(folder, "libtorch_cuda.so")), shim is not null);
    }

    static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    /// <summary>Loads the libraries in dependency order, then the shim, and returns the shim's handle (zero when TorchSharp's
    /// own search decides); a failure names the library and the linker's reason.</summary>
    internal IntPtr Load()
    {
        if (Folder is null || Shim is null) return IntPtr.Zero;   // not a layout we know: TorchSharp's own search decides
        if (ShimNamed) NativeShim.PrepareNamed(Shim);
        var libraries = Directory.GetFiles(Folder, "libgomp*.so*").Order(StringComparer.Ordinal)
            .Concat(new[] { "libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so" }.Select(f => Path.Combine(Folder, f)).Where(File.Exists))
            .Concat(Source == "package" ? [] : [NativeShim.TorchCpuAlias(Folder)])   // the package's own is what TorchSharp finds by name
            .Append(Shim);
        var handle = IntPtr.Zero;
        foreach (var library in libraries)
        {
            try { handle = NativeLibrary.Load(library); }
            catch (DllNotFoundException e)
            {
                // The runtime's message carries the dynamic linker's: the library and the missing symbol or version.
                var why = e.Message.Contains(NativeShim.MissingVersion) ? $" (the shim needs {NativeShim.MissingVersion}; it must be writable so that this can be relaxed)" : "";
                throw new InvalidOperationException($"TorchSharp's native library {library} ({Source}) could not be loaded{why}: {e.Message}", e);
            }
        }
        return handle;
    }

    /// <summary>The version a libtorch folder states: a PyTorch install's torch/version.py, a libtorch archive's
    /// build-version, or the version folder of a NuGet package (…/libtorch-cpu-linux-x64/2.10.0/runtimes/…).</summary>
    public static string? VersionOf(string folder)
    {
        var parent = Path.GetFullPath(Path.Combine(folder, ".."));
        var versionPy = Path.Combine(parent, "version.py");
        if (File.Exists(versionPy) && Regex.Match(File.ReadAllText(versionPy), @"__version__\s*=\s*['""]([^'""]+)['""]") is { Success: true } m) return m.Groups[1].Value;
        var buildVersion = Path.Combine(parent, "build-version");
        if (File.Exists(buildVersion) && File.ReadAllText(buildVersion).Trim() is { Length: > 0 and < 64 } b) return b;
        var package = Regex.Match(folder.Replace('\\', '/'), @"/libtorch-[^/]+/(\d+\.\d+\.\d+[^/]*)/runtimes/");
        return package.Success ? package.Groups[1].Value : null;
    }

    static string Minor(string version) => string.Join('.', version.Split('.', '+').Take(2));
    static bool SameMinor(string a, string b) => Minor(a) == Minor(b);

    /// <summary>Where this package's own libtorch-cpu lies: next to the app, or in the NuGet cache beside TorchSharp.</summary>
    static IEnumerable<string> PackageFolders()
    {
        yield return AppContext.BaseDirectory;
        yield return Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (string.IsNullOrEmpty(torchDir)) yield break;
        yield return Path.Combine(torchDir, "cpu");                                             // TorchSharp's consolidated copy
        // NuGet layout: <packages>/torchsharp/<v>/lib/net8.0 → <packages>/libtorch-cpu-linux-x64/<Expected>/runtimes/…
        var packages = Path.GetFullPath(Path.Combine(torchDir, "..", "..", "..", ".."));
        yield return Path.Combine(packages, "libtorch-cpu-linux-x64", Expected, "runtimes", "linux-x64", "native");
    }

    /// <summary>torch/lib of the PyTorch that <c>python3</c> imports.</summary>
    static string PythonTorchLib()
    {
        var start = new ProcessStartInfo("python3", ["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        try
        {
            using var p = Process.Start(start)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(60))) { p.Kill(true); throw new LibTorchBackendException($"{LibTorchVariable}=auto: python3 -c \"import torch\" did not finish in 60 s"); }
            if (p.ExitCode != 0)
                throw new LibTorchBackendException($"{LibTorchVariable}=auto: python3 could not import torch ({stderr.Result.Trim().Split('\n').LastOrDefault()}); set {LibTorchVariable} to a torch/lib folder");
            return stdout.Result.Trim();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LibTorchBackendException($"{LibTorchVariable}=auto: no python3 to ask ({e.Message}); set {LibTorchVariable} to a torch/lib folder");
        }
    }

    /// <summary>One line for banners: the version, where it came from, and whether it can use CUDA.</summary>
    public override string ToString() => $"libtorch {Version} ({Source}{(HasCuda ? ", CUDA" : "")})" + (Folder is null ? "" : $" from {Folder}");
}

/// <summary>A libtorch request (<c>VRFT_LIBTORCH</c>, <c>VRFT_TORCHSHARP_NATIVE</c>, <c>VRFT_DEVICE</c>) that cannot work; the
/// message names the folder, file or version and what to do (<c>vrft</c> exits 2).</summary>
public sealed class LibTorchBackendException(string message) : InvalidOperationException(message);
