using System.Diagnostics;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>
/// Visual-RFT's GRPO loop in the stages a notebook steps through (DESIGN.md), one file each: <see cref="Rollout(VisualSample)"/>
/// samples G answers per prompt (Rollout.cs), <see cref="RolloutGroup.Score()"/> applies the verifiable reward (Score.cs),
/// <see cref="ScoredGroup.Advantages()"/> normalises within each group (Advantages.cs), <see cref="Update"/> takes the
/// policy-gradient step (Update.cs). <see cref="Step"/> composes them over the micro-batches of one optimizer step and
/// <see cref="Train"/> repeats it, yielding each step's <see cref="Episode"/> (Episode.cs). Every stage returns plain
/// records; the tensors an update needs stay here, reached through the rollout's <see cref="RolloutGroup.Handle"/>.
/// </summary>
public sealed partial class GrpoTrainer : IDisposable
{
    readonly Generator _sampler;
    readonly IReadOnlyList<VisualSample> _train;
    readonly PromptOrder _order;
    readonly LinkedList<RolloutHandle> _held = new();
    readonly List<Episode> _history = [];
    bool _disposed;
    int _busy;

    /// <param name="policy">The model being trained; its weights change.</param>
    /// <param name="train">Training prompts, visited in a seeded shuffled order, epoch after epoch.</param>
    /// <param name="reward">The verifiable reward (e.g. <c>Rewards.Detection()</c>).</param>
    /// <param name="options">GRPO settings; <see cref="GrpoOptions.VisualRftPaper"/> reproduces the paper.</param>
    /// <param name="totalSteps">Trainer steps of the run: the horizon of the linear learning-rate decay (paper: 200).</param>
    public GrpoTrainer(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> train, TaskReward reward, GrpoOptions options, int totalSteps = 200)
    {
        if (train.Count == 0) throw new ArgumentException("the training set is empty", nameof(train));
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "must be at least 1");
        Options = options.Validate();
        Policy = policy;
        Reward = reward;
        TotalSteps = totalSteps;
        _train = train;
        _order = new PromptOrder(train.Count, options.Seed);
        // The reference is the policy as it is now, needed only for the KL term (spec §2.1): a frozen copy, or with LoRA the
        // model with its adapters off.
        Reference = options.UsesReference ? policy.Reference() : null;
        if (Options.FreezeVisionTower)
            foreach (var p in policy.Model.visual.parameters()) p.requires_grad = false;
        policy.Model.GradientCheckpointing = Options.GradientCheckpointing;
        Optimizer = new PolicyOptimizer(policy.TrainableParameters(), Options.Optimizer, totalSteps * options.Mu);
        _sampler = new Generator((ulong)options.Seed, policy.Device);
    }

    public VisionLanguagePolicy Policy { get; }
    public VisionLanguagePolicy? Reference { get; }
    public TaskReward Reward { get; }
    public GrpoOptions Options { get; }
    public PolicyOptimizer Optimizer { get; }
    public int TotalSteps { get; }

    /// <summary>Trainer steps done (each is μ optimizer steps).</summary>
    public int StepsDone => Optimizer.StepCount / Options.Mu;

    /// <summary>The training prompts, in the order given.</summary>
    public IReadOnlyList<VisualSample> TrainSet => _train;

    /// <summary>Every episode that <see cref="Step"/> produced, oldest first (a dashboard's data).</summary>
    public IReadOnlyList<Episode> History => _history;

    /// <summary>
    /// One trainer step: <see cref="GrpoOptions.GradientAccumulation"/> micro-batches of
    /// <see cref="GrpoOptions.PromptsPerMicroBatch"/> prompts are rolled out, scored and normalised, then μ optimizer steps.
    /// </summary>
    public Episode Step()
    {
        using var call = Enter();
        var micro = new List<(AdvantageBatch Batch, RolloutTensors Tensors)>();
        try
        {
            var stepIndex = StepsDone;
            for (int m = 0; m < Options.GradientAccumulation; m++)
            {
                var samples = Enumerable.Range(0, Options.PromptsPerMicroBatch)
                    .Select(k => _train[_order[(long)stepIndex * Options.PromptsPerStep + m * Options.PromptsPerMicroBatch + k]]).ToList();
                var rollout = RolloutCore(samples);
                micro.Add((rollout.Score().Advantages(), rollout.Handle.Tensors!));
            }
            var update = Apply(micro);
            var batches = micro.Select(m => m.Batch).ToList();
            var episode = new Episode(StepsDone, batches, update, StepMetrics.Of(StepsDone, batches, update));
            _history.Add(episode);
            return episode;
        }
        finally
        {
            foreach (var (batch, _) in micro) batch.Rollout.Handle.Release();
        }
    }

    /// <summary>
    /// Steps until <see cref="TotalSteps"/> (or <paramref name="steps"/> more), yielding each step's episode. With
    /// <paramref name="runFolder"/>, each episode is also appended to its <c>episodes.jsonl</c> (<see cref="EpisodeLog"/>).
    /// Cancelling lets the step in flight finish, so the trainer stays consistent.
    /// </summary>
    public IEnumerable<Episode> Train(int? steps = null, string? runFolder = null, CancellationToken cancellation = default)
    {
        if (steps is < 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "must be >= 0");
        var end = steps is { } n ? Math.Min(TotalSteps, StepsDone + n) : TotalSteps;
        while (StepsDone < end && !cancellation.IsCancellationRequested)
        {
            var episode = Step();
            if (runFolder is not null) EpisodeLog.Append(runFolder, episode);
            yield return episode;
        }
    }

    /// <summary>
    /// Writes an atomic checkpoint (weights, optimizer, sampler RNG, step, options) under <paramref name="runFolder"/>; with
    /// <paramref name="retention"/>, older ones are pruned (the last N, and the best by <paramref name="metric"/>, e.g. the
    /// held-out reward).
    /// </summary>
    public string SaveCheckpoint(string runFolder, CheckpointRetention? retention = null, double? metric = null)
    {
        using var call = Enter();
        return Checkpoint.Save(runFolder, Trained, Optimizer, Options, null, _sampler, retention, metric);
    }

    /// <summary>Restores a checkpoint of this run; the reference stays the model this trainer was built from.</summary>
    public void LoadCheckpoint(string path)
    {
        Checkpoint.Load<GrpoOptions>(path, Trained, Optimizer, null, _sampler);
    }

    // What a step changes: a LoRA run trains its adapters only and the base stays as loaded, so its checkpoint holds the
    // adapters (resumed on the same base with the same LoraConfig; a full run's checkpoint does not fit and is refused).
    nn.Module Trained => (nn.Module?)Policy.Model.Adapters ?? Policy.Model;

    /// <summary>
    /// The guard of every public call that runs torch work: the trainer is alive, no other call is inside it (a cancelled
    /// notebook cell finishes its step before the next cell may start one), and finalizers wait (FinalizerGate.Hold).
    /// </summary>
    IDisposable Enter()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(GrpoTrainer),
            "this trainer was disposed (the records it returned stay valid); create a new GrpoTrainer to go on training");
        if (Interlocked.Exchange(ref _busy, 1) == 1)
            throw new InvalidOperationException("the trainer is still inside another call (a cancelled cell finishes the step it started); run this again when it is done");
        var finalizers = FinalizerGate.Hold();
        return new Exit(() => { finalizers.Dispose(); Volatile.Write(ref _busy, 0); });
    }

    sealed class Exit(Action leave) : IDisposable
    {
        public void Dispose() => leave();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var handle in _held) handle.Release();
        _held.Clear();
        Optimizer.Dispose();
        Reference?.Dispose();
        _sampler.Dispose();
    }
}
