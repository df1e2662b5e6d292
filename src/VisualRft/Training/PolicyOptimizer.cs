using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace VisualRft.Training;

/// <summary>What one optimizer step did.</summary>
/// <param name="Step">Optimizer steps counted after this one (skipped steps count: the schedule and data move on).</param>
/// <param name="LearningRate">The rate this step used (or would have used when skipped).</param>
/// <param name="GradNorm">Global gradient norm before clipping; NaN/inf when that caused the skip.</param>
/// <param name="Skipped">True when the weights and the AdamW state were left untouched.</param>
/// <param name="SkipReason">Why the step was skipped.</param>
public sealed record OptimizerStepResult(int Step, double LearningRate, double GradNorm, bool Skipped, string? SkipReason);

/// <summary>
/// AdamW + learning-rate schedule + gradient clipping + gradient-accumulation bookkeeping + the non-finite guard,
/// as HF <c>Trainer</c> runs them (spec §2.3): <c>Backward</c> once per micro-batch, then <c>Step</c> once per
/// <see cref="OptimizerOptions.GradientAccumulation"/> micro-batches. If a micro-batch loss or any gradient is NaN/inf the
/// step is skipped: gradients are zeroed, weights and optimizer moments stay as they were, and the result says why.
/// Half-precision parameters (bf16 or fp16 weights) get float32 master weights: AdamW, its moments, the norm and the clip
/// work on float32 copies, and the model's weights are those rounded after each step — so updates far below a bf16
/// weight's resolution (lr 1e-6 on weights of 1e-2 is 0.01 %, bf16 resolves 0.4 %) still add up, as in mixed-precision
/// training with verl's FSDP or DeepSpeed. TorchSharp has no autocast, so the forward and backward run in the weights' dtype.
/// </summary>
public sealed class PolicyOptimizer : IDisposable
{
    readonly (string Name, Parameter Parameter)[] _named;
    readonly Parameter[] _params;
    /// <summary>What AdamW steps: <see cref="_params"/> themselves, or their float32 master copies.</summary>
    readonly Parameter[] _stepped;
    readonly OptimizerOptions _options;
    string? _lossProblem;

    /// <param name="namedParameters">The trainable parameters (those with requires_grad are kept), with their names for error messages.</param>
    /// <param name="options">Optimizer knobs (validated).</param>
    /// <param name="totalSteps">Optimizer steps of the whole run: T of the linear decay.</param>
    public PolicyOptimizer(IEnumerable<(string Name, Parameter Parameter)> namedParameters, OptimizerOptions options, int totalSteps)
    {
        _options = options.Validate();
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "a run needs at least one optimizer step");
        _named = namedParameters.Where(p => p.Parameter.requires_grad).ToArray();
        if (_named.Length == 0) throw new ArgumentException("no trainable parameters (none requires grad)", nameof(namedParameters));
        _params = _named.Select(p => p.Parameter).ToArray();
        HasMasterWeights = _params.Any(p => p.dtype is ScalarType.BFloat16 or ScalarType.Float16);
        using (no_grad())
            _stepped = HasMasterWeights
                ? _params.Select(p => (Parameter)new Parameter(p.detach().to_type(ScalarType.Float32).clone()).DetachFromDisposeScope()).ToArray()
                : _params;
        TotalSteps = totalSteps;
        // torch.optim.AdamW with HF's values; TorchSharp's weight_decay default is 0 but we pass it explicitly anyway.
        Inner = optim.AdamW(_stepped, lr: LearningRateSchedule.At(options, 0, totalSteps), beta1: options.AdamBeta1,
            beta2: options.AdamBeta2, eps: options.AdamEpsilon, weight_decay: options.WeightDecay);
    }

    /// <summary>Convenience: every trainable parameter of <paramref name="module"/>.</summary>
    public PolicyOptimizer(nn.Module module, OptimizerOptions options, int totalSteps)
        : this(module.named_parameters(), options, totalSteps) { }

    /// <summary>The TorchSharp optimizer (its state is what checkpoints save).</summary>
    public TorchSharp.Modules.AdamW Inner { get; }

    public IReadOnlyList<Parameter> Parameters => _params;

    /// <summary>True when AdamW steps float32 master copies of half-precision parameters (<see cref="MasterWeights"/>).</summary>
    public bool HasMasterWeights { get; }

    /// <summary>The float32 weights AdamW steps, in <see cref="Parameters"/> order: the parameters themselves unless
    /// <see cref="HasMasterWeights"/>.</summary>
    public IReadOnlyList<Parameter> MasterWeights => _stepped;

    /// <summary>Optimizer steps taken so far (skipped ones included).</summary>
    public int StepCount { get; private set; }

    public int TotalSteps { get; }

    /// <summary>Micro-batches backpropagated since the last <see cref="Step"/>.</summary>
    public int PendingMicroBatches { get; private set; }

    /// <summary>True once <see cref="OptimizerOptions.GradientAccumulation"/> micro-batches are in.</summary>
    public bool IsStepDue => PendingMicroBatches >= _options.GradientAccumulation;

    /// <summary>The rate the next step will use.</summary>
    public double NextLearningRate => LearningRateSchedule.At(_options, StepCount, TotalSteps);

    /// <summary>
    /// Backpropagates one micro-batch's loss (already divided by the accumulation, as both trainers' losses are).
    /// A non-finite loss is not backpropagated; it marks the step to be skipped.
    /// </summary>
    public void Backward(Tensor loss)
    {
        if (loss.numel() != 1) throw new ArgumentException($"the loss must be a scalar, got shape [{string.Join(",", loss.shape)}]", nameof(loss));
        PendingMicroBatches++;
        var value = loss.detach().to_type(ScalarType.Float64).item<double>();
        if (!double.IsFinite(value))
        {
            _lossProblem ??= $"loss is {value} at micro-batch {PendingMicroBatches}";
            return;
        }
        if (_lossProblem is null) loss.backward();
    }

    /// <summary>Applies (or skips) the step: guard, clip, learning rate, AdamW, zero grads.</summary>
    public OptimizerStepResult Step()
    {
        if (PendingMicroBatches == 0) throw new InvalidOperationException("Step called before any Backward since the last step");
        var lr = NextLearningRate;
        double norm = double.NaN;
        var reason = _lossProblem;
        if (reason is null && HasMasterWeights)
            using (no_grad())
                for (int i = 0; i < _params.Length; i++)
                {
                    if (_params[i].grad is not { } g) continue;
                    if (_stepped[i].grad is { } master) master.copy_(g);
                    else
                        using (var first = g.to_type(ScalarType.Float32)) _stepped[i].grad = first;   // the parameter holds its own reference
                }
        if (reason is null)
        {
            norm = GradientTools.GlobalNorm(_stepped);
            if (!double.IsFinite(norm))
                reason = GradientTools.FirstNonFinite(_named) is { } name
                    ? $"non-finite gradient in {name}"
                    : $"gradient norm overflowed to {norm}";
        }
        if (reason is null)
        {
            GradientTools.Clip(_stepped, norm, _options.MaxGradNorm);
            foreach (var g in Inner.ParamGroups) g.LearningRate = lr;
            Inner.step();
            if (HasMasterWeights)
                using (no_grad())
                    for (int i = 0; i < _params.Length; i++) _params[i].copy_(_stepped[i]);
        }
        Inner.zero_grad();
        if (HasMasterWeights)
            foreach (var p in _params) p.grad = null;   // freed, as AdamW's zero_grad frees the masters' (set_to_none)
        StepCount++;
        PendingMicroBatches = 0;
        _lossProblem = null;
        // Like HF's scheduler.step() after optimizer.step(): the groups carry the rate of the coming step.
        foreach (var g in Inner.ParamGroups) g.LearningRate = NextLearningRate;
        return new OptimizerStepResult(StepCount, lr, norm, reason is not null, reason);
    }

    /// <summary>Writes the AdamW state (moments, per-parameter step counts, group options) in TorchSharp's format, then the
    /// master weights when there are any (the model's rounded weights cannot give them back).</summary>
    public void SaveState(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        Inner.save_state_dict(w);
        if (HasMasterWeights)
            foreach (var m in _stepped) m.Save(w);
    }

    /// <summary>Restores <see cref="SaveState"/>'s output and <see cref="StepCount"/>; the parameters must be the same shapes.</summary>
    public void LoadState(Stream stream, int step, string source)
    {
        if (step < 0 || step > TotalSteps)
            throw new InvalidDataException($"{source}: step {step} is outside this run of {TotalSteps} optimizer steps");
        using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        try
        {
            Inner.load_state_dict(r);
            if (HasMasterWeights)
                using (no_grad())
                    foreach (var m in _stepped) m.Load(r);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException or InvalidOperationException)
        {
            throw new InvalidDataException($"{source}: the optimizer state does not fit this model's parameters: {e.Message}", e);
        }
        if (stream.Position != stream.Length) throw new InvalidDataException($"{source}: {stream.Length - stream.Position} unexpected bytes after the optimizer state");
        StepCount = step;
        PendingMicroBatches = 0;
        _lossProblem = null;
    }

    public void Dispose()
    {
        Inner.Dispose();
        if (HasMasterWeights)
            foreach (var m in _stepped) m.Dispose();
    }
}
