using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Torch;

/// <summary>
/// Makes TorchSharp loadable and picks the device. Call <see cref="EnsureLoaded"/> before the first torch call.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's native shim <c>libLibTorchSharp.so</c> was linked against GCC 13 and asks for
/// <c>GLIBCXX_3.4.32</c>, which Debian 12 (GCC 12) lacks, so the first torch call fails with a misleading
/// "doesn't contain a reference to libtorch-cpu-linux-x64" (platform-notes.md §13). The only symbol of that version
/// is an iostream initialiser with no relocation, so marking the version need as weak (VER_FLG_WEAK) lets glibc load
/// the library unchanged otherwise. The patch is idempotent and touches the copies next to TorchSharp.dll, in the app
/// folder and in the NuGet package folder.
/// </remarks>
public static class TorchRuntime
{
    const string MissingVersion = "GLIBCXX_3.4.32";
    static readonly object Gate = new();
    static bool _loaded;

    /// <summary>Threads torch uses on the calling thread now: <see cref="ThreadPolicy"/> sets them before each model call.</summary>
    public static int Threads
    {
        get
        {
            EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>
    /// Runs when this assembly is first used, so that the shim is patched even if the caller's next line touches a torch
    /// static (e.g. <c>torch.CPU</c>) before any VisualRft call has loaded libtorch. File work only; never throws.
    /// </summary>
#pragma warning disable CA2255 // a library module initializer on purpose: it must run before the caller's first torch call
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void PatchOnAssemblyLoad()
    {
        try { PatchNativeShims(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    // Set once every candidate was read; EnsureLoaded then skips re-reading the shims that the module initializer patched.
    static volatile bool _patched;

    static void PatchNativeShims()
    {
        if (_patched) return;
        if (OperatingSystem.IsLinux())
            foreach (var path in CandidateShimPaths())
                TryPatch(path);
        _patched = true;
    }

    /// <summary>Patches the native shim where needed and loads libtorch. A given <paramref name="threads"/> fixes the
    /// thread count of every later model call (<see cref="ThreadPolicy.Override"/>); without one the policy chooses.</summary>
    public static void EnsureLoaded(int? threads = null)
    {
        lock (Gate)
        {
            if (!_loaded)
            {
                PatchNativeShims();
                if (OperatingSystem.IsLinux()) PreloadNatives();
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception e)
                {
                    throw new InvalidOperationException("TorchSharp could not load its native libraries (checked: "
                        + string.Join(", ", CandidateShimPaths()) + "): " + e.Message, e);
                }
                _loaded = true;
            }
            if (threads is { } n)
            {
                ThreadPolicy.Override = n;
                torch.set_num_threads(n);
            }
        }
    }

    /// <summary>CUDA when a CUDA libtorch is present and a GPU is visible, otherwise CPU.</summary>
    public static Device DefaultDevice()
    {
        EnsureLoaded();
        return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
    }

    /// <summary>A short description of the backend for banners and reports.</summary>
    public static string Describe()
    {
        EnsureLoaded();
        var device = DefaultDevice();
        return $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch {LibTorchVersion}"
            + (LibTorchFolder is null ? "" : $" from {LibTorchFolder}") + $", device {device.type}, {ThreadPolicy.Describe()}";
    }

    /// <summary>
    /// Loads this package's own libtorch and shim by absolute path, in dependency order, before TorchSharp looks for them.
    /// Inside a notebook kernel TorchSharp and libtorch come from two NuGet package folders, so the shim's
    /// <c>libtorch_cpu.so</c> need is not found through its <c>$ORIGIN</c> run path and the dynamic linker takes whatever
    /// the library path offers — Debian's python3-torch puts a libtorch 1.13 in /usr/lib/x86_64-linux-gnu, and the shim
    /// then fails on a missing C++ symbol. A library already loaded satisfies later needs of the same name, so loading
    /// ours first wins. Console apps find them next to the shim and are unaffected.
    /// </summary>
    static void PreloadNatives()
    {
        var libtorch = CandidateLibTorchFolders().FirstOrDefault(d => File.Exists(Path.Combine(d, "libtorch_cpu.so")));
        var shim = CandidateShimPaths().FirstOrDefault();
        if (libtorch is null || shim is null) return;   // not a layout we know: TorchSharp's own search decides
        LibTorchFolder = libtorch;
        var libraries = Directory.GetFiles(libtorch, "libgomp*.so*").Order(StringComparer.Ordinal)
            .Concat(new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" }.Select(f => Path.Combine(libtorch, f)).Where(File.Exists))
            .Append(shim);
        foreach (var library in libraries)
        {
            try { NativeLibrary.Load(library); }
            catch (DllNotFoundException e)
            {
                // The runtime's message carries the dynamic linker's: the library and the missing symbol or version.
                var why = e.Message.Contains(MissingVersion) ? $" (the shim needs {MissingVersion}; it must be writable so that this can be relaxed)" : "";
                throw new InvalidOperationException($"TorchSharp's native library {library} could not be loaded{why}: {e.Message}", e);
            }
        }
    }

    static IEnumerable<string> CandidateLibTorchFolders()
    {
        yield return AppContext.BaseDirectory;
        yield return Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (string.IsNullOrEmpty(torchDir)) yield break;
        yield return Path.Combine(torchDir, "cpu");                                             // TorchSharp's consolidated copy
        // NuGet layout: <packages>/torchsharp/<v>/lib/net8.0 → <packages>/libtorch-cpu-linux-x64/<LibTorchVersion>/runtimes/…
        var packages = Path.GetFullPath(Path.Combine(torchDir, "..", "..", "..", ".."));
        yield return Path.Combine(packages, "libtorch-cpu-linux-x64", LibTorchVersion, "runtimes", "linux-x64", "native");
    }

    /// <summary>Where this process's libtorch was loaded from (null when TorchSharp's own search found it).</summary>
    public static string? LibTorchFolder { get; private set; }

    /// <summary>The libtorch package this build references (Directory.Build.props).</summary>
    static string LibTorchVersion => typeof(TorchRuntime).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "LibTorchVersion")?.Value ?? "";

    static IEnumerable<string> CandidateShimPaths()
    {
        var dirs = new List<string> { AppContext.BaseDirectory };
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            dirs.Add(torchDir);
            dirs.Add(Path.Combine(torchDir, "cpu"));                               // TorchSharp's consolidated copy
            var packageRoot = Path.GetFullPath(Path.Combine(torchDir, "..", ".."));   // lib/net8.0 -> package root
            dirs.Add(Path.Combine(packageRoot, "runtimes", "linux-x64", "native"));
        }
        dirs.Add(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"));
        return dirs.Select(d => Path.Combine(d, "libLibTorchSharp.so")).Where(File.Exists).Distinct();
    }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 version need of an ELF64 little-endian file.</summary>
    /// <returns>true when the file was changed.</returns>
    internal static bool TryPatch(string path)
    {
        try
        {
            var d = File.ReadAllBytes(path);
            if (!PatchElf(d)) return false;
            var tmp = path + ".vrft-tmp";
            File.WriteAllBytes(tmp, d);
            File.Move(tmp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;   // read-only copies are reported by EnsureLoaded if loading then fails
        }
    }

    internal static bool PatchElf(byte[] d)
    {
        if (d.Length < 64 || d[0] != 0x7f || d[1] != (byte)'E' || d[2] != (byte)'L' || d[3] != (byte)'F' || d[4] != 2 || d[5] != 1)
            return false;
        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3A));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3C));
        bool changed = false;
        for (int i = 0; i < shnum; i++)
        {
            var sh = (int)(shoff + (long)i * shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 4)) != 0x6ffffffe) continue;   // SHT_GNU_verneed
            var off = (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(sh + 0x18));
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 0x28));
            var strSh = (int)(shoff + (long)link * shentsize);
            var strOff = (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(strSh + 0x18));
            var vn = off;
            while (true)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(vn + 2));
                var aux = vn + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 8));
                for (int j = 0; j < cnt; j++)
                {
                    var flags = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(aux + 4));
                    var name = strOff + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 8));
                    var end = Array.IndexOf(d, (byte)0, name);
                    if (Encoding.ASCII.GetString(d, name, end - name) == MissingVersion && (flags & 2) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(aux + 4), (ushort)(flags | 2));
                        changed = true;
                    }
                    var next = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 12));
                    if (next == 0) break;
                    aux += next;
                }
                var vnNext = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 12));
                if (vnNext == 0) break;
                vn += vnNext;
            }
        }
        return changed;
    }

    static readonly object GateLock = new();
    static int _holders;
    static ManualResetEventSlim? _gateRelease;
    static long _gateClosedAt;

    /// <summary>
    /// A stretch of torch work during which no finalizer runs. TorchSharp hands the native handle of temporary
    /// <c>Scalar</c>s (the alpha of every <c>a + b</c>, every <c>t * 0.5</c>) to libtorch without keeping the managed object
    /// alive; a collection started by another thread during that call can run the Scalar's finalizer while libtorch reads
    /// it, which surfaces as "Expected false to be true" from <c>Scalar::toFloat</c> or as a crash (upstream:
    /// dotnet/TorchSharp PRs 1434 and 1496, open). Holding off the GC is not enough (a step that allocates more than the
    /// no-GC budget reopens the window: it did, with 224-px images), so this parks the finalizer thread instead: an object
    /// whose finalizer waits for the section to end is collected up front, and every finalizer queued behind it, those of
    /// the step's Scalars included, runs only after the step's native calls have returned. Collections go on as usual.
    /// Sections are process-wide and counted: they nest and may overlap across threads; the gate opens when the last ends.
    /// Inside a section nothing may wait for pending finalizers (TorchSharp does so only to retry a failed allocation); the
    /// parked finalizer gives up after <see cref="MaxFinalizerHold"/> so that such a wait cannot hang for ever.
    /// <para>The guard sits at the public boundary: every public core method that runs torch work opens a section (the
    /// trainers' Rollout/Update/Step, GrpoLoss, evaluation, generation, the model's image encoding and log-prob passes, the
    /// gradient norm), and records and views hold no tensors, so notebook code that calls the API — also with tensors it
    /// builds itself, as notebooks/02-grpo-step-by-step does — needs nothing more; code that runs raw TorchSharp
    /// arithmetic (a Scalar per operator) in a loop opens its own. Whole
    /// cells are not held: compiling one, or restoring a package, may wait for finalizers. A long outer section would keep
    /// every finalizer waiting, so a section that starts while the gate has been closed for <see cref="GateRecycleAfter"/>
    /// first lets the queued finalizers run: it starts between native calls. This assumes torch work is not run from
    /// several threads at once.</para>
    /// </summary>
    public static IDisposable HoldFinalizers()
    {
        lock (GateLock)
        {
            if (_holders > 0 && Environment.TickCount64 - _gateClosedAt > (long)GateRecycleAfter.TotalMilliseconds)
            {
                _gateRelease?.Set();
                _gateRelease = null;
                GC.WaitForPendingFinalizers();
            }
            if (_holders++ == 0 || _gateRelease is null)
            {
                _gateRelease = CloseFinalizerGate();
                _gateClosedAt = Environment.TickCount64;
            }
        }
        return new FinalizerHold();
    }

    /// <summary>How long the gate stays closed before a nested section lets the queued finalizers run.</summary>
    public static TimeSpan GateRecycleAfter { get; internal set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest a section keeps the finalizer thread parked (a safety valve, far above any training step here).</summary>
    public static readonly TimeSpan MaxFinalizerHold = TimeSpan.FromMinutes(15);

    /// <summary>True while a <see cref="HoldFinalizers"/> section has the finalizer thread parked.</summary>
    public static bool FinalizersHeld
    {
        get { lock (GateLock) return _gateRelease is { IsSet: false }; }
    }

    static ManualResetEventSlim? CloseFinalizerGate()
    {
        var entered = new ManualResetEventSlim(false);
        var release = new ManualResetEventSlim(false);
        PlantGate(entered, release);
        // The gate object is young: a gen-0 collection finds it dead; a full one covers the case where another thread's
        // collection promoted it in between. The finalizer thread may first have to finish older finalizers (all safe).
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        if (entered.Wait(TimeSpan.FromMilliseconds(200))) return release;
        GC.Collect();
        if (entered.Wait(TimeSpan.FromSeconds(30))) return release;
        release.Set();
        System.Diagnostics.Trace.TraceWarning("TorchRuntime.HoldFinalizers: the finalizer thread did not reach the gate; the section runs unguarded");
        return null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void PlantGate(ManualResetEventSlim entered, ManualResetEventSlim release) => _ = new FinalizerGate(entered, release);

    sealed class FinalizerGate(ManualResetEventSlim entered, ManualResetEventSlim release)
    {
        ~FinalizerGate()
        {
            entered.Set();
            release.Wait(MaxFinalizerHold);
        }
    }

    sealed class FinalizerHold : IDisposable
    {
        int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            lock (GateLock)
            {
                if (--_holders > 0) return;
                _gateRelease?.Set();
                _gateRelease = null;
            }
        }
    }

    [DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    static extern int MallocTrimNative(nuint pad);

    /// <summary>Returns freed native memory to the OS after a large transient peak (glibc keeps it otherwise).</summary>
    public static void TrimNativeMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrimNative(0); } catch (DllNotFoundException) { } catch (EntryPointNotFoundException) { }
    }
}
