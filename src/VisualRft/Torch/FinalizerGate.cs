using System.Runtime.CompilerServices;

namespace VisualRft.Torch;

/// <summary>Keeps finalizers from running during torch work (see <see cref="Hold"/>).</summary>
public static class FinalizerGate
{
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
    public static IDisposable Hold()
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

    /// <summary>True while a <see cref="Hold"/> section has the finalizer thread parked.</summary>
    public static bool Held
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
        System.Diagnostics.Trace.TraceWarning("FinalizerGate.Hold: the finalizer thread did not reach the gate; the section runs unguarded");
        return null;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void PlantGate(ManualResetEventSlim entered, ManualResetEventSlim release) => _ = new Gate(entered, release);

    sealed class Gate(ManualResetEventSlim entered, ManualResetEventSlim release)
    {
        ~Gate()
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
}
