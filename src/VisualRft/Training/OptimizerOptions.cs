namespace VisualRft.Training;

/// <summary>
/// The optimizer side of a run, shared by both trainers: AdamW as HF <c>Trainer</c> configures it, the learning-rate
/// schedule, gradient clipping and accumulation (visual-rft-spec.md §2.3). <c>GrpoOptions.Optimizer</c> and
/// <see cref="SftOptions.Optimizer"/> project their flat knobs onto it.
/// </summary>
public sealed record OptimizerOptions
{
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-6;
    public LrSchedule LrSchedule { get; init; } = LrSchedule.Linear;
    /// <summary>Linear warm-up, in optimizer steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>AdamW decoupled weight decay (HF default 0).</summary>
    public double WeightDecay { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary>Global gradient-norm clip; 0 disables clipping (the norm is still measured).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Micro-batches backpropagated per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid knob and its value.</summary>
    public OptimizerOptions Validate()
    {
        void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"{name} = {value} is invalid: {rule}", name);
        }
        Check(double.IsFinite(LearningRate) && LearningRate > 0, nameof(LearningRate), LearningRate, "must be finite and > 0");
        Check(Enum.IsDefined(LrSchedule), nameof(LrSchedule), LrSchedule, "unknown schedule");
        Check(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "must be >= 0");
        Check(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must be finite and >= 0");
        Check(AdamBeta1 is >= 0 and < 1, nameof(AdamBeta1), AdamBeta1, "must be in [0, 1)");
        Check(AdamBeta2 is >= 0 and < 1, nameof(AdamBeta2), AdamBeta2, "must be in [0, 1)");
        Check(double.IsFinite(AdamEpsilon) && AdamEpsilon > 0, nameof(AdamEpsilon), AdamEpsilon, "must be finite and > 0");
        Check(double.IsFinite(MaxGradNorm) && MaxGradNorm >= 0, nameof(MaxGradNorm), MaxGradNorm, "must be finite and >= 0 (0 = no clipping)");
        Check(GradientAccumulation >= 1, nameof(GradientAccumulation), GradientAccumulation, "must be >= 1");
        return this;
    }
}
