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
/// Visual-RFT's GRPO loop in the stages a notebook steps through (DESIGN.md): <see cref="Rollout(VisualSample)"/> samples G
/// answers per prompt, <see cref="RolloutGroup.Score()"/> applies the verifiable reward, <see cref="ScoredGroup.Advantages()"/>
/// normalises within each group, <see cref="Update"/> takes the policy-gradient step. <see cref="Step"/> composes them over
/// the micro-batches of one optimizer step and <see cref="Train"/> repeats it, yielding each step's <see cref="Episode"/>.
/// Every stage returns plain records; the tensors an update needs stay here, keyed by the rollout's id.
/// </summary>
public sealed class GrpoTrainer : IDisposable
{
    /// <summary>Rollouts made by <see cref="Rollout(VisualSample)"/> whose tensors are kept for <see cref="Update"/>;
    /// older ones are released (a notebook that samples in a loop would otherwise hold every image graph).</summary>
    public const int HeldRollouts = 4;

    readonly Generator _sampler;
    readonly IReadOnlyList<VisualSample> _train;
    readonly PromptOrder _order;
    readonly LinkedList<(long Id, RolloutTensors Tensors)> _held = new();
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
        // The reference is the policy as it is now: a frozen copy, needed only for the KL term (spec §2.1).
        Reference = options.UsesReference ? policy.FrozenCopy() : null;
        Optimizer = new PolicyOptimizer(policy.Model, Options.Optimizer, totalSteps * options.Mu);
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

    SamplingOptions Sampling => new(MaxNewTokens: Options.MaxCompletionLength, Temperature: Options.Temperature,
        TopK: Options.TopK, TopP: Options.TopP, StopTokenIds: Policy.StopTokenIds, PadTokenId: Policy.PadTokenId);

    /// <summary>G completions for one prompt.</summary>
    public RolloutGroup Rollout(VisualSample sample) => Rollout([sample]);

    /// <summary>
    /// G completions for each prompt, sampled as one batch with the KV cache. The returned record is plain data; the
    /// tensors that <see cref="Update"/> needs are kept here for the last <see cref="HeldRollouts"/> rollouts.
    /// </summary>
    public RolloutGroup Rollout(IReadOnlyList<VisualSample> samples)
    {
        using var call = Enter();
        var (record, tensors) = RolloutCore(samples);
        _held.AddLast((record.Id, tensors));
        while (_held.Count > HeldRollouts)
        {
            _held.First!.Value.Tensors.Dispose();
            _held.RemoveFirst();
        }
        return record;
    }

    /// <summary>
    /// Samples, then computes what the update needs. The vision tower runs once per prompt: its output feeds the sampler
    /// (detached) and is kept, with its graph, for the first policy pass. Every pass runs each prompt once for its G completions.
    /// </summary>
    (RolloutGroup, RolloutTensors) RolloutCore(IReadOnlyList<VisualSample> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("no prompts", nameof(samples));
        var g = Options.NumGenerations;
        var model = Policy.Model;
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var batch = Policy.Encode(samples);
        CheckPromptLengths(batch, samples);
        var device = Policy.Device;
        var promptIds = batch.InputIdsTensor().to(device);
        var promptMask = batch.AttentionMaskTensor().to(device);
        var grid = batch.ImageGridThwTensor()!;
        var images = EncodePerPrompt(model, batch.PixelValuesTensor()!.to(device), grid);
        var sampled = new ImageInputs(cat(images.Select(i => i.Embeds.detach()).ToList(), 0), grid);
        var generated = model.Generate(promptIds, promptMask, sampled, Sampling, g, _sampler, returnLogProbs: true);
        var generateMs = clock.Elapsed.TotalMilliseconds;

        clock.Restart();
        Tensor? refLogps = null, oldLogps = null;
        using (no_grad())
        {
            if (Reference is not null)
            {
                var refImages = new ImageInputs(Reference.Model.EncodeImages(batch.PixelValuesTensor()!.to(device), grid), grid);
                refLogps = Reference.Model.CompletionLogProbs(promptIds, promptMask, refImages, g, generated.CompletionIds,
                    generated.CompletionMask, Options.Temperature);
            }
            // μ > 1: the log-probs of the sampling policy, fixed before the inner updates change it (TRL).
            if (Options.Mu > 1)
                oldLogps = model.CompletionLogProbs(promptIds, promptMask, sampled, g, generated.CompletionIds, generated.CompletionMask,
                    Options.Temperature);
        }
        var referenceMs = clock.Elapsed.TotalMilliseconds;

        var record = new RolloutGroup(RolloutGroup.NextId(), [.. samples], g,
            Describe(generated, refLogps, g), Policy.AnswerFrame, Frames(batch, samples), Reward, Options, generateMs, referenceMs);
        var tensors = new RolloutTensors(promptIds, promptMask, images, generated.CompletionIds, generated.CompletionMask, refLogps, oldLogps);
        foreach (var t in new[] { promptIds, promptMask, generated.CompletionIds, generated.CompletionMask, refLogps, oldLogps }) t?.MoveToOuterDisposeScope();
        foreach (var i in images) { i.Pixels.MoveToOuterDisposeScope(); i.Embeds.MoveToOuterDisposeScope(); i.GridThw.MoveToOuterDisposeScope(); }
        return (record, tensors);
    }

    /// <summary>
    /// The official trainer keeps the last <c>max_prompt_length</c> prompt columns but generates from the whole prompt, so a
    /// longer prompt shifts its completion slice into the prompt (spec §2.1); cutting image tokens would break the model
    /// instead. Either way the run is wrong, so a prompt over the limit is an error here.
    /// </summary>
    void CheckPromptLengths(Text.ProcessorBatch batch, IReadOnlyList<VisualSample> samples)
    {
        for (int b = 0; b < samples.Count; b++)
            if (batch.PromptLengths[b] > Options.MaxPromptLength)
                throw new ArgumentException($"sample {samples[b].Id} has a {batch.PromptLengths[b]}-token prompt, over GrpoOptions.MaxPromptLength = "
                    + $"{Options.MaxPromptLength}; raise the limit or shrink the image (the processor's MaxPixels)");
    }

    /// <summary>Image embeddings prompt by prompt, so that each prompt's graph can be freed by its own backward.</summary>
    static List<PromptImage> EncodePerPrompt(Qwen2VLForConditionalGeneration model, Tensor pixels, Tensor grid)
    {
        var result = new List<PromptImage>();
        long row = 0;
        for (long i = 0; i < grid.shape[0]; i++)
        {
            var thw = grid[i];
            var patches = thw[0].item<long>() * thw[1].item<long>() * thw[2].item<long>();
            var g = grid.narrow(0, i, 1).clone();
            var p = pixels.narrow(0, row, patches).clone();
            result.Add(new PromptImage(p, g, model.EncodeImages(p, g)));
            row += patches;
        }
        return result;
    }

    /// <summary>Per prompt, the image's original size and the size the processor resized it to (its patch grid).</summary>
    IReadOnlyList<ImageFrames> Frames(Text.ProcessorBatch batch, IReadOnlyList<VisualSample> samples)
    {
        var patch = Policy.Processor.ImageProcessor.PatchSize;
        return [.. samples.Select((s, b) => new ImageFrames(new ImageSize(s.Width, s.Height),
            new ImageSize(batch.Images!.GridThw[b].W * patch, batch.Images.GridThw[b].H * patch)))];
    }

    Completion[] Describe(GenerationOutput generated, Tensor? refLogps, int g)
    {
        var texts = Policy.Decode(generated.CompletionIds, generated.CompletionMask);
        var (n, c) = ((int)generated.CompletionIds.shape[0], (int)generated.CompletionIds.shape[1]);
        var ids = Rows<long>(generated.CompletionIds, n, c);
        var mask = Rows<long>(generated.CompletionMask, n, c);
        var logps = Rows<float>(generated.LogProbs!, n, c);
        var refs = refLogps is null ? null : Rows<float>(refLogps, n, c);
        float[][]? kl = null;
        if (refLogps is not null)
            using (var k = GrpoLoss.KlK3(generated.LogProbs!, refLogps) * generated.CompletionMask) kl = Rows<float>(k, n, c);
        var stops = Policy.StopTokenIds.ToHashSet();
        var tokenizer = Policy.Processor.Tokenizer;
        return [.. Enumerable.Range(0, n).Select(i =>
        {
            var length = (int)mask[i].Sum();
            var trace = new TokenTrace([.. ids[i].Select(v => (int)v)], [.. ids[i].Select(v => tokenizer.Decode([(int)v]))],
                [.. mask[i].Select(v => v != 0)], logps[i], refs?[i], kl?[i]);
            return new Completion(i / g, i % g, texts[i], length, length > 0 && stops.Contains(ids[i][length - 1]), trace);
        })];
    }

    static T[][] Rows<T>(Tensor t, int n, int c) where T : unmanaged
    {
        using var cpu = t.detach().cpu();
        var flat = cpu.data<T>().ToArray();
        return [.. Enumerable.Range(0, n).Select(i => flat[(i * c)..((i + 1) * c)])];
    }

    /// <summary>
    /// μ optimizer steps on one scored batch (the whole batch is one accumulation). Can be repeated: each call is another
    /// step on the same completions (the image features are recomputed once the rollout's own graph has been used).
    /// </summary>
    public UpdateResult Update(AdvantageBatch batch)
    {
        using var call = Enter();
        return Apply([(batch, TensorsOf(batch))]);
    }

    /// <summary>The kept tensors of a batch's rollout, or an error that says what to do.</summary>
    internal RolloutTensors TensorsOf(AdvantageBatch batch)
    {
        foreach (var (id, tensors) in _held)
            if (id == batch.Rollout.Id) return tensors;
        throw new InvalidOperationException($"rollout {batch.Rollout.Id} was not made by this trainer, or its tensors were released "
            + $"(it keeps those of its last {HeldRollouts} rollouts); run trainer.Rollout(...) again and score that");
    }

    UpdateResult Apply(IReadOnlyList<(AdvantageBatch Batch, RolloutTensors Tensors)> micro)
    {
        double policyMs = 0, optimizerMs = 0, loss = 0, clip = 0;
        double? kl = null;
        OptimizerStepResult? step = null;
        var logps = new List<float[]>();
        List<float[]>? tokenKl = Options.UsesReference ? [] : null;
        var dapoTokens = micro.Sum(m => m.Tensors.GeneratedTokens);
        for (int iteration = 0; iteration < Options.Mu; iteration++)
        {
            var clock = Stopwatch.StartNew();
            foreach (var (batch, tensors) in micro)
            {
                using var scope = NewDisposeScope();
                var (result, lp) = PolicyLoss(Policy.Model, tensors, tensor(batch.Advantages), Options, micro.Count,
                    Options.LossType == LossType.Dapo ? dapoTokens : null);
                Optimizer.Backward(result.Loss);
                loss += result.LossValue / Options.Mu;
                clip += result.ClipRegion / micro.Count / Options.Mu;
                if (result.MeanKl is { } k) kl = (kl ?? 0) + k / micro.Count / Options.Mu;
                if (iteration == 0)
                {
                    var n = (int)lp.shape[0];
                    logps.AddRange(Rows<float>(lp, n, (int)lp.shape[1]));
                    if (tokenKl is not null)
                        using (no_grad()) tokenKl.AddRange(Rows<float>(GrpoLoss.KlK3(lp, tensors.RefLogps!) * tensors.CompletionMask, n, (int)lp.shape[1]));
                }
            }
            policyMs += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            step = Optimizer.Step();
            optimizerMs += clock.Elapsed.TotalMilliseconds;
        }
        var reason = step!.SkipReason;
        var poisoned = micro.Select(m => m.Batch.NonFiniteReason).FirstOrDefault(r => r is not null);
        if (step.Skipped && poisoned is not null) reason = poisoned + "; " + reason;
        return new UpdateResult(loss, kl, clip, step.GradNorm, step.LearningRate, step.Skipped, reason, policyMs, optimizerMs,
            step.Step, logps, tokenKl);
    }

    /// <summary>
    /// The policy's log-probs of a rollout's completions (with gradient) and the GRPO loss on them: what every update
    /// backpropagates. The first pass reuses the rollout's image embeddings and their graph; later passes (μ &gt; 1, a
    /// repeated update) encode the pixels again, with the weights as they are now.
    /// </summary>
    internal static (GrpoLossResult Loss, Tensor LogProbs) PolicyLoss(Qwen2VLForConditionalGeneration model, RolloutTensors t,
        Tensor advantages, GrpoOptions options, int accumulation, double? dapoTokens)
    {
        var reuse = !t.GraphSpent && t.Images.All(i => i.Embeds.requires_grad);
        var perPrompt = reuse ? t.Images.Select(i => i.Inputs).ToList()
            : [.. t.Images.Select(i => new ImageInputs(model.EncodeImages(i.Pixels, i.GridThw), i.GridThw))];
        t.GraphSpent = true;
        var images = new ImageInputs(cat(perPrompt.Select(i => i.Embeds).ToList(), 0), cat(perPrompt.Select(i => i.GridThw).ToList(), 0));
        var logps = model.CompletionLogProbs(t.PromptIds, t.PromptMask, images, t.G, t.CompletionIds, t.CompletionMask, options.Temperature);
        return (GrpoLoss.Compute(logps, t.OldLogps, t.RefLogps, advantages.to(logps.device), t.CompletionMask, options, accumulation, dapoTokens), logps);
    }

    /// <summary>
    /// One trainer step: <see cref="GrpoOptions.GradientAccumulation"/> micro-batches of
    /// <see cref="GrpoOptions.PromptsPerMicroBatch"/> prompts are rolled out, scored and normalised, then μ optimizer steps.
    /// </summary>
    public Episode Step()
    {
        using var call = Enter();
        var micro = new List<(AdvantageBatch, RolloutTensors)>();
        try
        {
            var stepIndex = StepsDone;
            for (int m = 0; m < Options.GradientAccumulation; m++)
            {
                var samples = Enumerable.Range(0, Options.PromptsPerMicroBatch)
                    .Select(k => _train[_order[(long)stepIndex * Options.PromptsPerStep + m * Options.PromptsPerMicroBatch + k]]).ToList();
                var (rollout, tensors) = RolloutCore(samples);
                micro.Add((rollout.Score().Advantages(), tensors));
            }
            var update = Apply(micro);
            var batches = micro.Select(m => m.Item1).ToList();
            var episode = new Episode(StepsDone, batches, update, StepMetrics.Of(StepsDone, batches, update));
            _history.Add(episode);
            return episode;
        }
        finally
        {
            foreach (var (_, tensors) in micro) tensors.Dispose();
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
        return Checkpoint.Save(runFolder, Policy.Model, Optimizer, Options, null, _sampler, retention, metric);
    }

    /// <summary>Restores a checkpoint of this run; the reference stays the model this trainer was built from.</summary>
    public void LoadCheckpoint(string path) => Checkpoint.Load(path, Policy.Model, Optimizer, null, _sampler);

    /// <summary>
    /// The guard of every public call that runs torch work: the trainer is alive, no other call is inside it (a cancelled
    /// notebook cell finishes its step before the next cell may start one), and finalizers wait (TorchRuntime.HoldFinalizers).
    /// </summary>
    IDisposable Enter()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(GrpoTrainer),
            "this trainer was disposed (the records it returned stay valid); create a new GrpoTrainer to go on training");
        if (Interlocked.Exchange(ref _busy, 1) == 1)
            throw new InvalidOperationException("the trainer is still inside another call (a cancelled cell finishes the step it started); run this again when it is done");
        var finalizers = TorchRuntime.HoldFinalizers();
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
        foreach (var (_, tensors) in _held) tensors.Dispose();
        _held.Clear();
        Optimizer.Dispose();
        Reference?.Dispose();
        _sampler.Dispose();
    }
}
