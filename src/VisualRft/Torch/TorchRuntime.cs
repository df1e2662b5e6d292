using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Torch;

/// <summary>
/// Loads TorchSharp's native side once and picks the device: <see cref="EnsureLoaded"/> before the first torch call.
/// The jobs live beside it: <see cref="NativeShim"/> makes the shim loadable on Debian 12, <see cref="LibTorchBackend"/>
/// chooses and loads libtorch, <see cref="FinalizerGate"/> keeps finalizers out of native calls, <see cref="ThreadPolicy"/>
/// sets thread counts.
/// </summary>
public static class TorchRuntime
{
    static readonly object Gate = new();
    static LibTorchBackend? _backend;

    /// <summary>The libtorch this process loaded (<see cref="EnsureLoaded"/> chooses it).</summary>
    public static LibTorchBackend Backend
    {
        get
        {
            EnsureLoaded();
            return _backend!;
        }
    }

    /// <summary>Threads torch uses on the calling thread now: <see cref="ThreadPolicy"/> sets them before each model call.</summary>
    public static int Threads
    {
        get
        {
            EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>Chooses libtorch (<see cref="LibTorchBackend.Choose"/>), patches the shim where needed and loads both. A
    /// given <paramref name="threads"/> fixes the thread count of every later model call (<see cref="ThreadPolicy.Override"/>);
    /// without one the policy chooses.</summary>
    public static void EnsureLoaded(int? threads = null)
    {
        lock (Gate)
        {
            if (_backend is null)
            {
                var backend = LibTorchBackend.Choose(Environment.GetEnvironmentVariable);
                NativeShim.PatchAll();
                if (OperatingSystem.IsLinux()) backend.Load();
                try
                {
                    torch.InitializeDeviceType(backend.HasCuda ? DeviceType.CUDA : DeviceType.CPU);
                }
                catch (Exception e)
                {
                    throw new InvalidOperationException($"TorchSharp could not load its native libraries ({backend}; shims checked: "
                        + string.Join(", ", NativeShim.CandidatePaths()) + "): " + e.Message, e);
                }
                if (backend.ShimNamed && NativeShim.Mapped().Where(m => m != backend.Shim).ToList() is { Count: > 0 } others)
                    throw new LibTorchBackendException($"{LibTorchBackend.ShimVariable}={backend.Shim} did not take effect: TorchSharp had loaded "
                        + $"{string.Join(", ", others)}; call TorchRuntime.EnsureLoaded() before the first torch call");
                _backend = backend;
            }
            if (threads is { } n)
            {
                ThreadPolicy.Override = n;
                torch.set_num_threads(n);
            }
        }
    }

    /// <summary><c>VRFT_DEVICE</c> (cpu, cuda, cuda:N) when set; otherwise CUDA when libtorch has it and a GPU is visible,
    /// else the CPU.</summary>
    public static Device DefaultDevice()
    {
        EnsureLoaded();
        return ParseDevice(Environment.GetEnvironmentVariable(LibTorchBackend.DeviceVariable), torch.cuda.is_available(), torch.cuda.device_count());
    }

    internal static Device ParseDevice(string? requested, bool cudaAvailable, int cudaDevices)
    {
        var name = requested?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(name)) return cudaAvailable ? new Device(DeviceType.CUDA, 0) : torch.CPU;
        if (name == "cpu") return torch.CPU;
        var m = System.Text.RegularExpressions.Regex.Match(name, @"^cuda(?::(\d+))?$");
        if (!m.Success) throw new LibTorchBackendException($"{LibTorchBackend.DeviceVariable}={requested}: expected cpu, cuda or cuda:N");
        if (!cudaAvailable)
            throw new LibTorchBackendException($"{LibTorchBackend.DeviceVariable}={requested}, but no CUDA device is usable (libtorch {_backend?.Version} from {_backend?.Source}): "
                + $"load a CUDA libtorch with {LibTorchBackend.LibTorchVariable} and check nvidia-smi");
        var index = m.Groups[1].Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (index >= cudaDevices) throw new LibTorchBackendException($"{LibTorchBackend.DeviceVariable}={requested}: only {cudaDevices} CUDA device(s) are visible");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>A short description of the backend for banners and reports.</summary>
    public static string Describe()
    {
        EnsureLoaded();
        return $"TorchSharp {typeof(torch).Assembly.GetName().Version}, {_backend}, device {DefaultDevice()}, {ThreadPolicy.Describe()}";
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
