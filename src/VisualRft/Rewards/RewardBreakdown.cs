using System.Globalization;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>A reward component's identity, its documented range under the reward's preset, and its weight in the total.</summary>
/// <param name="Name">Stable name, used as the JSON key by <c>vrft score</c> and in logs (e.g. <c>iou</c>, <c>format</c>).</param>
/// <param name="Description">What the component measures, with the spec section it follows.</param>
/// <param name="Min">Smallest value the component can take (see the reward class for the proof under visual-rft).</param>
/// <param name="Max">Largest value the component can take.</param>
/// <param name="Weight">Its weight in <see cref="RewardBreakdown.Total"/>.</param>
public sealed record RewardComponent(string Name, string Description, double Min, double Max, double Weight = 1.0);

/// <summary>One component's value in a breakdown.</summary>
public readonly record struct ComponentScore(string Name, double Value, double Weight);

/// <summary>
/// The reward of one completion: every component by name, the weighted total, what was read from the answer,
/// when the task component is 0 because the answer (or solution) could not be read, why, and for detection how the
/// answer's boxes were matched with the solution's: the matching the reward scored, which views draw and explain.
/// </summary>
/// <param name="Components">Every component's value, in the reward's component order.</param>
/// <param name="Answer">What the reward read from the completion.</param>
/// <param name="Failure">Why the task component is 0, when the answer or the solution could not be read.</param>
/// <param name="Matches">One entry per compared box of the detection answer's <see cref="DetectionAnswer.Boxes"/>, in
/// matching order (descending confidence); empty for the other tasks and where the reward failed before matching.</param>
public sealed record RewardBreakdown(IReadOnlyList<ComponentScore> Components, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches)
{
    /// <summary>Σ weight · value over the components with a non-zero weight (so a NaN component with weight 0 does not
    /// poison the total). Under visual-rft a NaN confidence reward makes the total NaN, as in the original.</summary>
    public double Total { get; } = Components.Where(c => c.Weight != 0).Sum(c => c.Weight * c.Value);

    /// <summary>The value of the component called <paramref name="name"/>.</summary>
    public double this[string name] => Components.FirstOrDefault(c => c.Name == name) is { Name: not null } c ? c.Value
        : throw new KeyNotFoundException($"no reward component '{name}'; components are {string.Join(", ", Components.Select(x => x.Name))}");

    /// <summary>Each component's values over <paramref name="rewards"/> (breakdowns of one reward), by name, in the
    /// reward's component order: what summaries and charts average.</summary>
    public static IReadOnlyDictionary<string, double[]> ByComponent(IReadOnlyList<RewardBreakdown> rewards) =>
        rewards.Count == 0 ? new Dictionary<string, double[]>()
            : rewards[0].Components.ToDictionary(c => c.Name, c => rewards.Select(r => r[c.Name]).ToArray());

    public override string ToString() =>
        string.Join(" + ", Components.Select(c => $"{c.Name} {c.Value.ToString("0.####", CultureInfo.InvariantCulture)}"))
        + $" = {Total.ToString("0.####", CultureInfo.InvariantCulture)}" + (Failure is null ? "" : $" ({Failure})");
}
