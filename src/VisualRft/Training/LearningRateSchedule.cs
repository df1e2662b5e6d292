namespace VisualRft.Training;

/// <summary>Learning-rate schedule over optimizer steps (HF <c>lr_scheduler_type</c>).</summary>
public enum LrSchedule
{
    /// <summary>HF <c>get_linear_schedule_with_warmup</c>: linear warm-up, then linear decay to 0 at the last step.</summary>
    Linear,
    /// <summary>HF <c>get_constant_schedule_with_warmup</c>: linear warm-up, then constant.</summary>
    Constant,
}

/// <summary>
/// The learning rate of each optimizer step, exactly as HF <c>get_linear_schedule_with_warmup</c> /
/// <c>get_constant_schedule_with_warmup</c> under <c>LambdaLR</c>: step s (0-based, = optimizer steps already taken)
/// uses base · λ(s) with λ(s) = s / max(1, W) during the W warm-up steps, then max(0, (T − s) / max(1, T − W)) for the
/// linear schedule (1 for the constant one). So the first step of a run without warm-up uses the full base rate and
/// the rate after step s, which HF logs, is λ(s + 1): 9.6e-7 after step 1 of 25 (spec §2.3, [I#97]).
/// </summary>
public static class LearningRateSchedule
{
    public static double Factor(LrSchedule schedule, int step, int totalSteps, int warmupSteps)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "must be >= 0");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "must be >= 1");
        if (step < warmupSteps) return step / (double)Math.Max(1, warmupSteps);
        return schedule switch
        {
            LrSchedule.Linear => Math.Max(0.0, (totalSteps - step) / (double)Math.Max(1, totalSteps - warmupSteps)),
            LrSchedule.Constant => 1.0,
            _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown schedule"),
        };
    }

    /// <summary>The rate optimizer step <paramref name="step"/> (0-based) uses under <paramref name="options"/>.</summary>
    public static double At(OptimizerOptions options, int step, int totalSteps) =>
        options.LearningRate * Factor(options.LrSchedule, step, totalSteps, options.WarmupSteps);
}
