using System.Diagnostics;
using TorchSharp;
using VisualRft.Data;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>
/// Visual-RFT's GRPO loop in the stages a notebook steps through (DESIGN.md): <c>Rollout</c> samples G answers per
/// prompt, <c>RolloutGroup.Score</c> applies the verifiable reward, <c>ScoredGroup.Advantages</c> normalises
/// within each group, <see cref="Update"/> takes the policy-gradient step. <see cref="Step"/> composes them over the
/// micro-batches of one optimizer step and <see cref="Train"/> repeats it, yielding each step's metrics as it finishes.
/// </summary>
public sealed class GrpoTrainer : IDisposable
{
    readonly Generator _sampler;
    readonly IReadOnlyList<VisualSample> _train;
    readonly PromptOrder _order;

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

    SamplingOptions Sampling => new(MaxNewTokens: Options.MaxCompletionLength, Temperature: Options.Temperature,
        TopK: Options.TopK, TopP: Options.TopP, StopTokenIds: Policy.StopTokenIds, PadTokenId: Policy.PadTokenId);

    /// <summary>G completions for one prompt.</summary>
    public RolloutGroup Rollout(VisualSample sample) => Rollout([sample]);

    /// <summary>
    /// G completions for each prompt, sampled as one batch with the KV cache. The vision tower runs once per prompt: its
    /// output feeds the sampler (detached) and is kept, with its graph, for the first policy pass; the reference model
    /// likewise encodes each image once for its G rows.
    /// </summary>
    public RolloutGroup Rollout(IReadOnlyList<VisualSample> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("no prompts", nameof(samples));
        var g = Options.NumGenerations;
        var model = Policy.Model;
        using var finalizers = TorchRuntime.HoldFinalizers();
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var batch = Policy.Encode(samples);
        var device = Policy.Device;
        var promptIds = batch.InputIdsTensor().to(device);
        var promptMask = batch.AttentionMaskTensor().to(device);
        var pixels = batch.PixelValuesTensor()!.to(device);
        var grid = batch.ImageGridThwTensor()!;
        var policyImages = EncodePerPrompt(model, pixels, grid);
        var sampled = new ImageInputs(cat(policyImages.Select(i => i.Embeds.detach()).ToList(), 0), grid);
        var generated = model.Generate(promptIds, promptMask, sampled, Sampling, g, _sampler);
        var generateMs = clock.Elapsed.TotalMilliseconds;

        clock.Restart();
        var rowsIds = promptIds.repeat_interleave(g, 0);
        var rowsMask = promptMask.repeat_interleave(g, 0);
        Tensor? refLogps = null, oldLogps = null;
        using (no_grad())
        {
            if (Reference is not null)
            {
                var refImages = new ImageInputs(Reference.Model.EncodeImages(pixels, grid), grid);
                refLogps = Reference.Model.CompletionLogProbs(rowsIds, rowsMask, generated.CompletionIds, generated.CompletionMask,
                    Reference.Model.RepeatForSamples(refImages, promptIds, g));
            }
            // μ > 1: the log-probs of the sampling policy, fixed before the inner updates change it (TRL).
            if (Options.Mu > 1)
                oldLogps = model.CompletionLogProbs(rowsIds, rowsMask, generated.CompletionIds, generated.CompletionMask,
                    model.RepeatForSamples(sampled, promptIds, g));
        }
        var referenceMs = clock.Elapsed.TotalMilliseconds;

        var completions = Describe(generated.CompletionIds, generated.CompletionMask, g);
        foreach (var t in new[] { promptIds, promptMask, generated.CompletionIds, generated.CompletionMask }) t.MoveToOuterDisposeScope();
        refLogps?.MoveToOuterDisposeScope();
        oldLogps?.MoveToOuterDisposeScope();
        foreach (var i in policyImages) { i.Pixels.MoveToOuterDisposeScope(); i.Embeds.MoveToOuterDisposeScope(); i.GridThw.MoveToOuterDisposeScope(); }
        return new RolloutGroup(this, samples, g, promptIds, promptMask, policyImages, generated.CompletionIds, generated.CompletionMask,
            refLogps, oldLogps, completions, generateMs, referenceMs);
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

    Completion[] Describe(Tensor ids, Tensor mask, int g)
    {
        var texts = Policy.Decode(ids, mask);
        using var lengths = mask.sum(1).cpu().to_type(ScalarType.Int64);
        var len = lengths.data<long>().ToArray();
        using var cpuIds = ids.cpu();
        var c = ids.shape[1];
        var flat = cpuIds.data<long>().ToArray();
        var stops = Policy.StopTokenIds.ToHashSet();
        return [.. Enumerable.Range(0, texts.Length).Select(i =>
            new Completion(i / g, i % g, texts[i], (int)len[i], len[i] > 0 && stops.Contains(flat[i * c + len[i] - 1])))];
    }

    /// <summary>μ optimizer steps on one scored batch (the whole batch is one accumulation).</summary>
    public UpdateResult Update(AdvantageBatch batch) => Apply([batch]);

    UpdateResult Apply(IReadOnlyList<AdvantageBatch> micro)
    {
        using var finalizers = TorchRuntime.HoldFinalizers();
        double policyMs = 0, optimizerMs = 0, loss = 0;
        double? kl = null;
        double clip = 0;
        OptimizerStepResult? step = null;
        var dapoTokens = micro.Sum(m => m.Rollout.GeneratedTokens);
        for (int iteration = 0; iteration < Options.Mu; iteration++)
        {
            var clock = Stopwatch.StartNew();
            loss = 0; clip = 0; kl = null;
            foreach (var m in micro)
            {
                using var scope = NewDisposeScope();
                var r = m.Rollout;
                // Iteration 0 reuses the rollout's image features and their graph; later iterations see changed weights.
                var reuse = iteration == 0 && r.PolicyImages.All(i => i.Embeds.requires_grad);
                var perPrompt = reuse ? r.PolicyImages.Select(i => i.Inputs).ToList()
                    : [.. r.PolicyImages.Select(i => new ImageInputs(Policy.Model.EncodeImages(i.Pixels, i.GridThw), i.GridThw))];
                var images = new ImageInputs(cat(perPrompt.Select(i => i.Embeds).ToList(), 0), cat(perPrompt.Select(i => i.GridThw).ToList(), 0));
                var logps = Policy.Model.CompletionLogProbs(r.PromptIds.repeat_interleave(r.G, 0), r.PromptMask.repeat_interleave(r.G, 0),
                    r.CompletionIds, r.CompletionMask, Policy.Model.RepeatForSamples(images, r.PromptIds, r.G));
                var result = GrpoLoss.Compute(logps, r.OldLogps, r.RefLogps, m.Values.Advantages.to(logps.device), r.CompletionMask,
                    Options, micro.Count, Options.LossType == LossType.Dapo ? dapoTokens : null);
                Optimizer.Backward(result.Loss);
                loss += result.LossValue;
                clip += result.ClipRegion / micro.Count;
                if (result.MeanKl is { } k) kl = (kl ?? 0) + k / micro.Count;
            }
            policyMs += clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            step = Optimizer.Step();
            optimizerMs += clock.Elapsed.TotalMilliseconds;
        }
        var reason = step!.SkipReason;
        var poisoned = micro.Select(m => m.NonFiniteReason).FirstOrDefault(r => r is not null);
        if (step.Skipped && poisoned is not null) reason = poisoned + "; " + reason;
        return new UpdateResult(loss, kl, clip, step.GradNorm, step.LearningRate, step.Skipped, reason, policyMs, optimizerMs, step.Step);
    }

    /// <summary>
    /// One trainer step: <see cref="GrpoOptions.GradientAccumulation"/> micro-batches of
    /// <see cref="GrpoOptions.PromptsPerMicroBatch"/> prompts are rolled out, scored and normalised, then μ optimizer steps.
    /// </summary>
    public StepMetrics Step()
    {
        var micro = new List<AdvantageBatch>();
        using var finalizers = TorchRuntime.HoldFinalizers();
        try
        {
            var stepIndex = StepsDone;
            for (int m = 0; m < Options.GradientAccumulation; m++)
            {
                var samples = Enumerable.Range(0, Options.PromptsPerMicroBatch)
                    .Select(k => _train[_order[(long)stepIndex * Options.PromptsPerStep + m * Options.PromptsPerMicroBatch + k]]).ToList();
                micro.Add(Rollout(samples).Score().Advantages());
            }
            var update = Apply(micro);
            return Metrics(micro, update);
        }
        finally
        {
            foreach (var m in micro) { m.Dispose(); m.Rollout.Dispose(); }
        }
    }

    /// <summary>Steps until <see cref="TotalSteps"/> (or <paramref name="steps"/> more), yielding each step's metrics.</summary>
    public IEnumerable<StepMetrics> Train(int? steps = null, CancellationToken cancellation = default)
    {
        var end = steps is { } n ? Math.Min(TotalSteps, StepsDone + n) : TotalSteps;
        while (StepsDone < end && !cancellation.IsCancellationRequested)
            yield return Step();
    }


    StepMetrics Metrics(List<AdvantageBatch> micro, UpdateResult update)
    {
        var rewards = micro.SelectMany(m => m.Scored.Rewards).ToList();
        var names = rewards[0].Components.Select(c => c.Name);
        var components = names.ToDictionary(n => n, n => rewards.Select(r => r[n]).ToArray());
        var completions = micro.SelectMany(m => m.Rollout.Completions).ToList();
        var generateMs = micro.Sum(m => m.Rollout.GenerateMs);
        var groups = micro.Sum(m => m.Values.ZeroStdGroups.Length);
        var zeroStd = micro.Sum(m => m.Values.ZeroStdGroups.Count(z => z));
        return new StepMetrics(
            StepsDone,
            RewardStat.OfComponents(components),
            RewardStat.Of(rewards.Select(r => r.Total).ToArray()),
            groups == 0 ? 0 : zeroStd / (double)groups,
            update.Kl,
            update.Loss,
            update.ClipFraction,
            update.GradNorm,
            completions.Average(c => c.Tokens),
            update.LearningRate,
            new StepTimings(generateMs, micro.Sum(m => m.Rollout.ReferenceMs), update.PolicyMs, update.OptimizerMs),
            completions.Sum(c => c.Tokens) / Math.Max(generateMs / 1000.0, 1e-9),
            update.Skipped,
            update.SkipReason);
    }

    /// <summary>Writes an atomic checkpoint (weights, optimizer, sampler RNG, step, options) under <paramref name="runFolder"/>.</summary>
    public string SaveCheckpoint(string runFolder) => Checkpoint.Save(runFolder, Policy.Model, Optimizer, Options, null, _sampler);

    /// <summary>Restores a checkpoint of this run; the reference stays the model this trainer was built from.</summary>
    public void LoadCheckpoint(string path) => Checkpoint.Load(path, Policy.Model, Optimizer, null, _sampler);

    public void Dispose()
    {
        Optimizer.Dispose();
        Reference?.Dispose();
        _sampler.Dispose();
    }
}
