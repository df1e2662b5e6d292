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
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception e)
                {
                    throw new InvalidOperationException(
                        "TorchSharp could not load its native libraries. On Debian 12 the library libLibTorchSharp.so must be "
                        + $"writable so that its {MissingVersion} requirement can be relaxed; check the folders "
                        + string.Join(", ", CandidateShimPaths()) + ". Original error: " + e.Message, e);
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
        return $"TorchSharp {typeof(torch).Assembly.GetName().Version}, device {device.type}, {ThreadPolicy.Describe()}";
    }

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
    /// </summary>
    public static IDisposable HoldFinalizers()
    {
        lock (GateLock)
        {
            if (_holders++ == 0) _gateRelease = CloseFinalizerGate();
        }
        return new FinalizerHold();
    }

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
