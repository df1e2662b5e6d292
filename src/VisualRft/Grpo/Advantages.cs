namespace VisualRft.Grpo;

// Stage 3 of a GRPO step: GRPO's baseline is the group itself. Plain C# on the rewards; GrpoLoss.Advantages is the same
// computation on tensors, tested against this one.

/// <summary>Group-normalised advantages of B·G rewards ordered group by group (spec §2.1; TRL <c>scale_rewards</c>).</summary>
public static class GroupAdvantages
{
    /// <summary>TRL's group-std epsilon: A = (r − mean)/(std + 1e-4).</summary>
    public const double StdEpsilon = 1e-4;

    /// <summary>A group is flagged zero-std when its std is at most this (TRL: <c>isclose(std, 0)</c>).</summary>
    public const double ZeroStd = 1e-8;

    /// <summary>
    /// The mean is always per group; <paramref name="scaling"/> picks the divisor. Std is unbiased (N − 1), like
    /// <c>torch.std</c>. Returns per completion the advantage, per group its mean, std and whether its rewards are all equal
    /// (advantage 0: only the KL term trains such a group, spec §8).
    /// </summary>
    public static (double[] Advantages, double[] Means, double[] Stds, bool[] ZeroStdGroups) Of(IReadOnlyList<double> rewards, int groupSize,
        RewardScaling scaling = RewardScaling.Group)
    {
        if (groupSize < 2) throw new ArgumentException($"group size must be >= 2, got {groupSize}", nameof(groupSize));
        var n = rewards.Count;
        if (n == 0 || n % groupSize != 0) throw new ArgumentException($"{n} rewards do not split into groups of {groupSize}", nameof(rewards));
        if (!rewards.All(double.IsFinite)) throw new ArgumentException("rewards contain NaN or inf; sanitise the reward functions (spec §8: NaN confidence)", nameof(rewards));
        var groups = n / groupSize;
        var means = new double[groups];
        var stds = new double[groups];
        for (int b = 0; b < groups; b++)
            (means[b], stds[b]) = MeanStd(rewards.Skip(b * groupSize).Take(groupSize).ToArray());
        var batchStd = MeanStd([.. rewards]).Std;
        var advantages = new double[n];
        for (int i = 0; i < n; i++)
        {
            var centred = rewards[i] - means[i / groupSize];
            advantages[i] = scaling switch
            {
                RewardScaling.Group => centred / (stds[i / groupSize] + StdEpsilon),
                RewardScaling.Batch => centred / (batchStd + StdEpsilon),
                RewardScaling.None => centred,
                _ => throw new ArgumentOutOfRangeException(nameof(scaling), scaling, "unknown reward scaling"),
            };
        }
        return (advantages, means, stds, [.. stds.Select(s => Math.Abs(s) <= ZeroStd)]);
    }

    /// <summary>The share of groups whose rewards are all equal (TRL's <c>frac_reward_zero_std</c>).</summary>
    public static double FractionZeroStd(IReadOnlyCollection<bool> zeroStdGroups) =>
        zeroStdGroups.Count == 0 ? 0 : zeroStdGroups.Count(z => z) / (double)zeroStdGroups.Count;

    static (double Mean, double Std) MeanStd(double[] values)
    {
        var mean = values.Average();
        return (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1)));
    }
}

/// <summary>Scored rollouts with their advantages: what <c>GrpoTrainer.Update</c> consumes.</summary>
/// <param name="Scored">The rollout and its rewards.</param>
/// <param name="Advantages">One per completion, constant over its tokens (float, as the loss takes them).</param>
/// <param name="GroupMeans">Per prompt: the mean reward of its group.</param>
/// <param name="GroupStds">Per prompt: the unbiased std of its group's rewards.</param>
/// <param name="ZeroStdGroups">Groups whose rewards are all equal: advantage 0, only the KL term trains them (spec §8).</param>
/// <param name="Scaling">What divided the centred rewards.</param>
/// <param name="NonFiniteReason">Set when a group had a non-finite reward (its advantages are NaN).</param>
public sealed record AdvantageBatch(ScoredGroup Scored, float[] Advantages, double[] GroupMeans, double[] GroupStds,
    bool[] ZeroStdGroups, RewardScaling Scaling, string? NonFiniteReason = null)
{
    public RolloutGroup Rollout => Scored.Rollout;

    /// <summary>
    /// Advantages as <see cref="GroupAdvantages.Of"/> computes them. A non-finite total (the official detection reward
    /// turns <c>'Confidence': NaN</c> into NaN, spec §4.7) makes its whole group's advantages NaN, as in the official
    /// trainer; the update then sees a NaN loss and skips the step, saying why.
    /// </summary>
    public static AdvantageBatch Of(ScoredGroup scored, RewardScaling scaling)
    {
        var totals = scored.Totals;
        var g = scored.Rollout.G;
        var poisoned = Enumerable.Range(0, totals.Length / g).Where(b => totals.Skip(b * g).Take(g).Any(t => !double.IsFinite(t))).ToArray();
        var (values, means, stds, zero) = GroupAdvantages.Of([.. totals.Select(t => double.IsFinite(t) ? t : 0.0)], g, scaling);
        var advantages = values.Select(v => (float)v).ToArray();
        foreach (var b in poisoned) Array.Fill(advantages, float.NaN, b * g, g);
        var reason = poisoned.Length == 0 ? null
            : $"non-finite reward in the group of prompt {poisoned[0]} ({scored.Rollout.Samples[poisoned[0]].Id})";
        return new AdvantageBatch(scored, advantages, means, stds, zero, scaling, reason);
    }
}
