using System.Diagnostics;
using System.Globalization;

namespace VisualRft.GpuBench;

/// <summary>
/// The peak memory of a phase. On a GPU: the device's used memory as <c>nvidia-smi</c> reports it, sampled every 20 ms
/// by a child process, because TorchSharp 0.107 exposes no allocator statistics (no max_memory_allocated: its shim
/// exports only device count, availability, synchronize and seeds for CUDA). That figure counts what the caching
/// allocator reserved, the CUDA context and any other process on the GPU, so it is above PyTorch's
/// max_memory_allocated; hf_step.py samples nvidia-smi the same way so that the two stacks compare on one measure.
/// On the CPU: the process's peak resident set (VmHWM, reset through /proc/self/clear_refs).
/// </summary>
sealed class PeakMemory : IDisposable
{
    readonly Process? smi;
    readonly string? why;
    long peakMib = -1, lastMib = -1;

    PeakMemory(Process? smi, string? why) => (this.smi, this.why) = (smi, why);

    public static PeakMemory ForCpu() => new(null, null);

    /// <summary>Samples GPU <paramref name="index"/> as torch numbers it (CUDA_VISIBLE_DEVICES maps it to nvidia-smi's id).</summary>
    public static PeakMemory ForGpu(int index)
    {
        var visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var id = visible is { Length: > 0 } && index < visible.Length ? visible[index] : index.ToString(CultureInfo.InvariantCulture);
        try
        {
            var p = Process.Start(new ProcessStartInfo("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits", $"--id={id}", "-lms", "20"])
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
            var memory = new PeakMemory(p, null);
            // run.sh's timeout ends the bench with SIGTERM, which skips Dispose: the sampler must not outlive it
            AppDomain.CurrentDomain.ProcessExit += (_, _) => memory.Dispose();
            p.OutputDataReceived += (_, e) => memory.Sample(e.Data);
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return memory;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new PeakMemory(null, $"no nvidia-smi ({e.Message})");
        }
    }

    void Sample(string? line)
    {
        if (!long.TryParse(line?.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var mib)) return;
        Interlocked.Exchange(ref lastMib, mib);
        long seen;
        while (mib > (seen = Interlocked.Read(ref peakMib)) && Interlocked.CompareExchange(ref peakMib, mib, seen) != seen) { }
    }

    public string What => smi is null && why is null ? "peak resident set (VmHWM)" : "peak GPU memory used (nvidia-smi, 20 ms samples)";

    /// <summary>Starts a phase: the peak so far is forgotten.</summary>
    public void Reset()
    {
        if (smi is not null || why is not null)
        {
            Thread.Sleep(60);   // let the sampler see the state the phase starts from
            Interlocked.Exchange(ref peakMib, Interlocked.Read(ref lastMib));
            return;
        }
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>The phase's peak in bytes, or null with the reason when nothing could be measured.</summary>
    public (long? Bytes, string? Why) Peak()
    {
        if (why is not null) return (null, why);
        if (smi is not null)
        {
            Thread.Sleep(60);   // the last samples of the phase
            var mib = Interlocked.Read(ref peakMib);
            return mib < 0 ? (null, smi.HasExited ? $"nvidia-smi exited with {smi.ExitCode}" : "nvidia-smi printed no sample") : (mib << 20, null);
        }
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? (null, "no VmHWM in /proc/self/status")
            : (long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) << 10, null);
    }

    int disposed;

    public void Dispose()
    {
        if (smi is null || Interlocked.Exchange(ref disposed, 1) == 1) return;
        try { if (!smi.HasExited) smi.Kill(); } catch (InvalidOperationException) { }
        smi.WaitForExit();
        smi.Dispose();
    }
}
