using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Torch;

/// <summary>
/// How many threads torch uses, chosen before each model call from the size of its work and from measurement, unless
/// the user fixed a count (<see cref="Override"/>, <c>TorchRuntime.EnsureLoaded(threads)</c> or the <c>VRFT_THREADS</c>
/// environment variable), which always wins.
/// </summary>
/// <remarks>
/// libtorch runs every operation that it splits across its threads as a fork and a join: all threads must finish before
/// the next operation starts. Two facts decide whether that pays (platform-notes.md §18, measured by
/// <c>bench/VisualRft.Bench -- rollout</c> on 2 cores):
/// <list type="bullet">
/// <item>An operation worth a few microseconds on one core gains nothing from a second one and pays the join: a decode
/// step of the tiny model (8 rows, 128 wide) is faster on one thread even on an idle machine.</item>
/// <item>When another process keeps a core busy, a thread on that core runs only when the scheduler gives it a turn, and
/// every operation waits for it: the tiny decode step went from ~1 ms on one thread to 3–60 ms on two; a thread per free
/// core keeps its speed.</item>
/// </list>
/// So a call gets one thread when its typical operation (the MLP's input projection, say) would take less than
/// <see cref="SplitMicroseconds"/> on one core — estimated from its multiply-adds and weight bytes with the speed of this
/// machine, measured once per process — and otherwise one thread per core that other processes left free over the last
/// quarter second or more (Linux: <c>/proc/stat</c> minus this process's own time; elsewhere every core counts as free).
/// Until a first interval has been measured, other processes count as busy. The count is set on the calling thread (it is
/// per thread in OpenMP) and stays in effect after the call, so a backward pass and an optimizer step run with the count
/// of the forward pass before them.
/// </remarks>
public static class ThreadPolicy
{
    /// <summary>An operation shorter than this on one core runs on one thread: a fork and join cost several microseconds
    /// on an idle machine, and a split of a short operation leaves the threads waiting on each other.</summary>
    public const double SplitMicroseconds = 100;

    /// <summary>A core counts as taken when other processes used more than this share of one over the last interval.</summary>
    public const double BusyShare = 0.25;

    /// <summary>An explicit thread count for every model call, or null for the automatic choice. Starts from <c>VRFT_THREADS</c>.</summary>
    public static int? Override
    {
        get => _override;
        set
        {
            if (value is < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "a thread count must be at least 1");
            _override = value;
        }
    }

    static int? _override = int.TryParse(Environment.GetEnvironmentVariable("VRFT_THREADS"), out var n) && n > 0 ? n : null;

    /// <summary>
    /// The thread count for work whose typical operation multiplies a [rows × inner] matrix by an [inner × outer] weight
    /// stored with <paramref name="elementSize"/> bytes per entry.
    /// </summary>
    public static int Choose(long rows, long inner, long outer, int elementSize)
    {
        if (_override is { } fixedCount) return fixedCount;
        var cores = Environment.ProcessorCount;
        if (cores == 1 || OneCoreMicroseconds(rows, inner, outer, elementSize) < SplitMicroseconds) return 1;
        var taken = (int)Math.Ceiling(Math.Max(0, CpuLoad.OtherProcessesCores() - BusyShare));
        return Math.Clamp(cores - taken, 1, cores);
    }

    /// <summary>Sets torch's thread count on the calling thread by <see cref="Choose"/> and returns it.</summary>
    public static int Use(long rows, long inner, long outer, int elementSize)
    {
        var count = Choose(rows, inner, outer, elementSize);
        if (torch.get_num_threads() != count) torch.set_num_threads(count);
        return count;
    }

    /// <summary>The estimated time of one such operation on one core: its multiply-adds or its weight bytes, whichever
    /// takes longer at this machine's measured speed.</summary>
    public static double OneCoreMicroseconds(long rows, long inner, long outer, int elementSize)
    {
        var (macsPerUs, bytesPerUs) = Speed.Value;
        return Math.Max((double)rows * inner * outer / macsPerUs, (double)inner * outer * elementSize / bytesPerUs);
    }

    /// <summary>This machine on one core: float32 multiply-adds and bytes read per microsecond (measured once, ~20 ms).</summary>
    public static (double MacsPerMicrosecond, double BytesPerMicrosecond) OneCoreSpeed => Speed.Value;

    static readonly Lazy<(double, double)> Speed = new(MeasureOneCore);

    static (double, double) MeasureOneCore()
    {
        TorchRuntime.EnsureLoaded();
        var threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            // Best of several runs: the speed the hardware gives, not the noise of the moment.
            var a = randn(64, 256);
            var w = randn(256, 256);
            var mm = Best(20, () => a.matmul(w));
            var big = ones(8L << 20);   // 32 MB, more than the caches
            var read = Best(3, () => big.sum());
            return (64.0 * 256 * 256 / mm, big.NumberOfElements * 4.0 / read);
        }
        finally
        {
            torch.set_num_threads(threads);
        }

        static double Best(int runs, Func<Tensor> op)
        {
            op().Dispose();
            var best = double.MaxValue;
            for (int i = 0; i < runs; i++)
            {
                var clock = Stopwatch.StartNew();
                op().Dispose();
                best = Math.Min(best, clock.Elapsed.TotalMicroseconds);
            }
            return best;
        }
    }

    /// <summary>A one-line account for banners and benchmarks.</summary>
    public static string Describe()
    {
        if (_override is { } fixedCount) return $"{fixedCount} threads (fixed)";
        var (macs, bytes) = Speed.Value;
        return $"threads chosen per call (1 below {SplitMicroseconds:F0} µs per operation; one core: {macs / 1e3:F0} GMAC/s, {bytes / 1e3:F1} GB/s; "
            + $"other processes now use {CpuLoad.OtherProcessesCores():F2} of {Environment.ProcessorCount} cores)";
    }
}

/// <summary>
/// CPU time that other processes took, in cores, over the interval since the previous reading (at least a quarter
/// second: the kernel counts in 10 ms ticks). Linux only; elsewhere 0.
/// </summary>
static class CpuLoad
{
    static readonly object Gate = new();
    static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(250);
    static Sample? _last;
    static double _others = double.NaN;   // not measured yet

    readonly record struct Sample(long Busy, long Total, long Self, long Timestamp);

    /// <summary>Cores' worth of other processes' CPU time; until a first interval is measured, every other core counts as busy.</summary>
    public static double OtherProcessesCores()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        lock (Gate)
        {
            var now = Read();
            if (now is null) return 0;
            if (_last is not { } last) _last = now;
            else if (Stopwatch.GetElapsedTime(last.Timestamp, now.Value.Timestamp) >= MinInterval && now.Value.Total > last.Total)
            {
                var (busy, total, self) = (now.Value.Busy - last.Busy, now.Value.Total - last.Total, now.Value.Self - last.Self);
                _others = Math.Max(0, (double)(busy - self) / total * Environment.ProcessorCount);
                _last = now;
            }
            return double.IsNaN(_others) ? Environment.ProcessorCount - 1 : _others;
        }
    }

    // /proc/stat "cpu user nice system idle iowait irq softirq steal ..." (all cores, in ticks); /proc/self/stat fields
    // 14 and 15 are this process's user and system ticks (after the parenthesised name, which may hold spaces).
    static Sample? Read()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(long.Parse).ToArray();
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var self = long.Parse(fields[11]) + long.Parse(fields[12]);
            var idle = cpu[3] + cpu[4];
            return new Sample(cpu.Sum() - idle, cpu.Sum(), self, Stopwatch.GetTimestamp());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }
}
