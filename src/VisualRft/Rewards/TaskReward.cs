using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>
/// A verifiable reward for one task: a pure function from completion text and solution text to named components and
/// their weighted total (visual-rft-spec.md §4). Thread-safe and allocation-light; the GRPO trainer calls
/// <see cref="Score(IReadOnlyList{string}, string)"/> once per group.
/// </summary>
public abstract class TaskReward
{
    private protected TaskReward(VisualTask task, RewardPreset preset, IReadOnlyList<RewardComponent> components)
    {
        Task = task;
        Preset = preset;
        Components = components;
    }

    public VisualTask Task { get; }
    public RewardPreset Preset { get; }
    /// <summary>The components in output order, with their documented ranges and weights.</summary>
    public IReadOnlyList<RewardComponent> Components { get; private set; }
    /// <summary>e.g. "detection/visual-rft".</summary>
    public string Name => $"{EnumNames.Of(Task)}/{EnumNames.Of(Preset)}";

    /// <summary>The reward for one completion. Never throws for any string input.</summary>
    public RewardBreakdown Score(string completion, string solution)
    {
        ArgumentNullException.ThrowIfNull(completion);
        ArgumentNullException.ThrowIfNull(solution);
        var (values, answer, failure, matches) = Evaluate(completion, solution);
        var scores = new ComponentScore[values.Length];
        for (int i = 0; i < values.Length; i++) scores[i] = new(Components[i].Name, values[i], Components[i].Weight);
        return new RewardBreakdown(scores, answer, failure, matches);
    }

    /// <summary>Rewards for completions paired one-to-one with solutions.</summary>
    public IReadOnlyList<RewardBreakdown> Score(IReadOnlyList<string> completions, IReadOnlyList<string> solutions)
    {
        if (completions.Count != solutions.Count)
            throw new ArgumentException($"{completions.Count} completions but {solutions.Count} solutions; they are scored in pairs");
        var result = new RewardBreakdown[completions.Count];
        for (int i = 0; i < result.Length; i++) result[i] = Score(completions[i], solutions[i]);
        return result;
    }

    /// <summary>Rewards for a GRPO group: G completions of one prompt against its one solution.</summary>
    public IReadOnlyList<RewardBreakdown> Score(IReadOnlyList<string> completions, string solution) =>
        completions.Select(c => Score(c, solution)).ToArray();

    /// <summary>A copy with some component weights replaced (the paper sums with weight 1, spec §4).</summary>
    public TaskReward WithWeights(IReadOnlyDictionary<string, double> weights)
    {
        foreach (var (name, w) in weights)
        {
            if (!Components.Any(c => c.Name == name))
                throw new ArgumentException($"{Name} has no component '{name}'; components are {string.Join(", ", Components.Select(c => c.Name))}");
            if (!double.IsFinite(w)) throw new ArgumentException($"weight of '{name}' must be finite, got {w}");
        }
        var copy = (TaskReward)MemberwiseClone();
        copy.Components = Components.Select(c => weights.TryGetValue(c.Name, out var w) ? c with { Weight = w } : c).ToArray();
        return copy;
    }

    /// <summary>The reward for a task under a preset with the default components (all weights 1).</summary>
    public static TaskReward Create(VisualTask task, RewardPreset preset = RewardPreset.VisualRft) => task switch
    {
        VisualTask.Detection => new DetectionReward(preset),
        VisualTask.Classification => new ClassificationReward(preset),
        VisualTask.Grounding => new GroundingReward(preset),
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, "unknown task"),
    };

    /// <summary>Component values in <see cref="Components"/> order, what was read, why the task part is 0 if it is, and
    /// (detection) how the predicted boxes were matched.</summary>
    private protected abstract (double[] Values, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) Evaluate(string completion, string solution);

    private protected static RewardComponent FormatComponent(RewardPreset preset) => new("format",
        preset == RewardPreset.VisualRft
            ? "1 iff the whole completion matches <think>.*?</think>\\s*<answer>.*?</answer> (DOTALL, spec §4.1)"
            : "1 iff, after stripping outer whitespace, the completion is one think block then one answer block", 0, 1);

    private protected static double Format(string completion, RewardPreset preset) => Answers.HasFormat(completion, preset) ? 1.0 : 0.0;
}

/// <summary>Factories for the per-task default rewards (<c>Rewards.Detection()</c> in a notebook).</summary>
/// <remarks>Inside a namespace under <c>VisualRft</c>, <c>Rewards</c> resolves to this namespace first; write
/// <c>TaskReward.Create(...)</c> or <c>new DetectionReward(...)</c> there.</remarks>
public static class Rewards
{
    /// <summary>Detection: IoU + confidence + format, range [0, 3].</summary>
    public static DetectionReward Detection(RewardPreset preset = RewardPreset.VisualRft) => new(preset);
    /// <summary>Classification: accuracy + format, range [0, 2].</summary>
    public static ClassificationReward Classification(RewardPreset preset = RewardPreset.VisualRft,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? aliases = null) => new(preset, aliases);
    /// <summary>Grounding (LISA): GIoU + 1 + format, nominal range [0, 3].</summary>
    public static GroundingReward Grounding(RewardPreset preset = RewardPreset.VisualRft) => new(preset);
    /// <summary>The default reward of <paramref name="task"/>.</summary>
    public static TaskReward For(VisualTask task, RewardPreset preset = RewardPreset.VisualRft) => TaskReward.Create(task, preset);
}
