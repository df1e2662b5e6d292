using VisualRft.Rewards;

namespace VisualRft.Grpo;

// Stage 2 of a GRPO step: the verifiable reward of every completion against its prompt's solution.

/// <summary>A rollout with every completion's reward components (rows as in <see cref="RolloutGroup"/>).</summary>
/// <param name="Rollout">The completions that were scored.</param>
/// <param name="Rewards">One breakdown per completion.</param>
/// <param name="Reward">The reward that scored them.</param>
public sealed record ScoredGroup(RolloutGroup Rollout, IReadOnlyList<RewardBreakdown> Rewards, TaskReward Reward)
{
    /// <summary>Scores each prompt's G completions together (a reward may compare them) against the prompt's solution.</summary>
    public static ScoredGroup Of(RolloutGroup rollout, TaskReward reward)
    {
        var g = rollout.G;
        var breakdowns = new RewardBreakdown[rollout.Completions.Count];
        for (int b = 0; b < rollout.Samples.Count; b++)
        {
            var scored = reward.Score([.. rollout.Of(b).Select(c => c.Text)], rollout.Samples[b].Solution);
            for (int j = 0; j < g; j++) breakdowns[b * g + j] = scored[j];
        }
        return new ScoredGroup(rollout, breakdowns, reward);
    }

    /// <summary>Total reward per completion.</summary>
    public double[] Totals => [.. Rewards.Select(r => r.Total)];

    /// <summary>Each component's values over the completions, by name.</summary>
    public IReadOnlyDictionary<string, double[]> Components => RewardBreakdown.ByComponent(Rewards);

    /// <summary>Group-normalised advantages with the scaling of the trainer that made the rollout.</summary>
    public AdvantageBatch Advantages() => Advantages(Rollout.Handle.Scaling);

    /// <summary>Group-normalised advantages with <paramref name="scaling"/> (<see cref="AdvantageBatch.Of"/>).</summary>
    public AdvantageBatch Advantages(RewardScaling scaling) => AdvantageBatch.Of(this, scaling);
}
