using System.Diagnostics;
using TorchSharp;

namespace VisualRft.Torch;

/// <summary>
/// How many threads torch uses, chosen before each model call from the size of its work and the measured load of the
/// machine, unless the user fixed a count (<see cref="Override"/>, <c>TorchRuntime.EnsureLoaded(threads)</c> or the
/// <c>VRFT_THREADS</c> environment variable), which always wins.
/// </summary>
/// <remarks>
/// libtorch runs every operation that it splits across threads as a fork and a join: all threads must finish before the
/// next operation starts. Measured on 2 cores (platform-notes.md §18, <c>bench/VisualRft.Bench -- rollout</c>):
/// <list type="bullet">
/// <item>Small operations gain nothing from a second thread: a decode step of the tiny model (8 rows, 128 wide) took
/// 1.10 ms on one thread and 1.30 ms on two with the machine nearly idle.</item>
/// <item>When another process keeps a core busy, a thread on that core runs only when the scheduler gives it a turn and
/// every operation waits for it: the same step took 3–50 ms on two threads and stayed near its idle time on one.</item>
/// <item>Large operations do gain on an idle machine: the tiny model's GRPO pass (~2,000 rows) and 2B decoding, whose
/// products stream 4–60 MB of weights each.</item>
/// </list>
/// So work whose typical product (the MLP's input projection) has fewer than <see cref="SplitMacs"/> multiply-adds and
/// a weight under <see cref="SplitWeightBytes"/> runs on one thread; larger work runs on one thread per core that other
/// processes left free over the last quarter second or more (Linux: <c>/proc/stat</c> minus this process's own time;
/// elsewhere every core counts as free; until a first interval is measured, other processes count as busy).
/// A loop of equal steps (decoding) does not trust the rule: it times one thread against that count and keeps the faster
/// (<see cref="ForSteps"/>, <see cref="SteppedThreads"/>).
/// The count is set on the calling thread (OpenMP keeps it per thread) and stays in effect after the call, so a
/// backward pass and an optimizer step run with the count of the forward pass before them.
/// <para>Reproducibility: forward passes give the same bits on one or two threads, backward passes (and some prefill
/// products) do not, so a training run on a machine whose load changes may round differently from one on an idle
/// machine and, many steps later, sample other tokens. Fix the count to reproduce a run bit for bit.</para>
/// </remarks>
public static class ThreadPolicy
{
    /// <summary>Products with fewer multiply-adds than this (2²⁵, ~0.6 ms on one core here) do not pay for a second thread.</summary>
    public const long SplitMacs = 1L << 25;

    /// <summary>Products that read a weight of this size or more (4 MiB, far beyond the caches) are worth splitting.</summary>
    public const long SplitWeightBytes = 1L << 22;

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
        if (cores == 1 || (rows * inner * outer < SplitMacs && inner * outer * elementSize < SplitWeightBytes)) return 1;
        var taken = (int)Math.Ceiling(Math.Max(0, CpuLoad.OtherProcessesCores() - BusyShare));
        return Math.Clamp(CpuLoad.MachineCores - taken, 1, cores);
    }

    /// <summary>Sets torch's thread count on the calling thread by <see cref="Choose"/> and returns it.</summary>
    public static int Use(long rows, long inner, long outer, int elementSize)
    {
        var count = Choose(rows, inner, outer, elementSize);
        if (torch.get_num_threads() != count) torch.set_num_threads(count);
        return count;
    }

    /// <summary>
    /// A thread count for a loop of equal steps (the decode steps of one <c>Generate</c> call), chosen by timing when
    /// <see cref="Choose"/> would split the work. See <see cref="SteppedThreads"/>.
    /// </summary>
    public static SteppedThreads ForSteps(long rows, long inner, long outer, int elementSize)
    {
        var candidate = Choose(rows, inner, outer, elementSize);
        return new SteppedThreads(_override is null && candidate > 1 ? Decisions.For((rows, inner, outer, elementSize, candidate)) : null, candidate);
    }

    /// <summary>Timed choices per loop shape and candidate count, shared by every loop of that shape.</summary>
    static class Decisions
    {
        static readonly Dictionary<(long, long, long, int, int), StepDecision> All = [];

        public static StepDecision For((long, long, long, int, int) key)
        {
            lock (All)
            {
                if (!All.TryGetValue(key, out var d)) All[key] = d = new StepDecision(key.Item5);
                return d;
            }
        }
    }

    /// <summary>A one-line account for banners and benchmarks.</summary>
    public static string Describe() => _override is { } fixedCount
        ? $"{fixedCount} threads (fixed)"
        : $"threads chosen per call (1 for small work; for large work, the cores free of other processes: now {CpuLoad.MachineCores - CpuLoad.OtherProcessesCores():F1} of {CpuLoad.MachineCores})";
}

/// <summary>
/// CPU time that other processes took, in cores, over the interval since the previous reading (at least a quarter
/// second: the kernel counts in 10 ms ticks). Linux only; elsewhere 0.
/// </summary>
static class CpuLoad
{
    /// <summary>The cores that <c>/proc/stat</c> accounts for (the machine's, which a container's quota may not show).</summary>
    public static int MachineCores { get; } = CountCores();

    static int CountCores()
    {
        try
        {
            return OperatingSystem.IsLinux()
                ? Math.Max(1, File.ReadLines("/proc/stat").Count(l => l.Length > 3 && l.StartsWith("cpu") && char.IsDigit(l[3])))
                : Environment.ProcessorCount;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Environment.ProcessorCount;
        }
    }

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
                _others = Math.Max(0, (double)(busy - self) / total * MachineCores);
                _last = now;
            }
            return double.IsNaN(_others) ? MachineCores - 1 : _others;
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

/// <summary>
/// The thread count of each step of a loop. Bandwidth-bound steps (2B decoding reads every weight once per token) gain
/// from a second thread on some machines and lose on others: on this project's 2-core VM, two threads ran 2B decoding at
/// 0.86–1.27× the bandwidth bound in one week's runs, and were 16–25 % slower than one thread in another's
/// (<c>bench/VisualRft.Bench -- rollout</c>). So where <see cref="ThreadPolicy.Choose"/> gives more than one thread, the
/// steps alternate between one thread and that count until each has <see cref="StepDecision.Trials"/> timings, and the
/// lower median runs from then on, for every loop of the same shape, until <see cref="StepDecision.Recheck"/> has passed
/// (a new load gives a new candidate count and a fresh decision). Forward passes give the same bits on either count: the
/// choice changes speed, not tokens. Work for one thread, or a count the user fixed, is never timed.
/// </summary>
public sealed class SteppedThreads
{
    readonly StepDecision? decision;
    readonly int fixedCount;
    int current;
    long started;

    internal SteppedThreads(StepDecision? decision, int fixedCount) => (this.decision, this.fixedCount) = (decision, fixedCount);

    /// <summary>Sets the thread count for the next step and starts its clock.</summary>
    public void Begin()
    {
        current = decision?.Next() ?? fixedCount;
        if (torch.get_num_threads() != current) torch.set_num_threads(current);
        started = Stopwatch.GetTimestamp();
    }

    /// <summary>Ends the step begun last; its time counts toward the decision while one is being made.</summary>
    public void End() => decision?.Record(current, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
}

/// <summary>One loop shape's choice between one thread and a candidate count (the policy's), from step timings.</summary>
internal sealed class StepDecision(int candidate)
{
    /// <summary>Timed steps per count before choosing: the median of three drops one disturbed step.</summary>
    public const int Trials = 3;

    /// <summary>How long a choice stands before the counts are timed again.</summary>
    public static readonly TimeSpan Recheck = TimeSpan.FromMinutes(2);

    readonly List<double> one = [], many = [];
    int? chosen;
    DateTime chosenAt;

    /// <summary>The count for the next step: the choice, or while choosing the count with fewer timings.</summary>
    public int Next(DateTime? now = null)
    {
        lock (this)
        {
            if (chosen is { } c && (now ?? DateTime.UtcNow) - chosenAt < Recheck) return c;
            if (chosen is not null) { chosen = null; one.Clear(); many.Clear(); }
            return one.Count <= many.Count ? 1 : candidate;
        }
    }

    public void Record(int threads, double ms, DateTime? now = null)
    {
        lock (this)
        {
            if (chosen is not null) return;
            (threads == 1 ? one : many).Add(ms);
            if (one.Count >= Trials && many.Count >= Trials)
            {
                chosen = Median(one) <= Median(many) ? 1 : candidate;
                chosenAt = now ?? DateTime.UtcNow;
            }
        }
    }

    static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
}
