using VisualRft.IO;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Rewards;

/// <summary>
/// Classification reward: <c>accuracy</c> + <c>format</c> (visual-rft-spec.md §4.8). Answers are open-ended class names.
/// </summary>
/// <remarks>
/// <para><b>visual-rft</b> reproduces [R] <c>grpo_classification.py</c>:</para>
/// <list type="number">
/// <item>§4.2: the math_verify pre-check is dropped (it never fires for class names anyway).</item>
/// <item>§4.8.2–3: answer and ground truth by <c>&lt;answer&gt;(.*?)&lt;/answer&gt;</c> without DOTALL, else the whole stripped text:
/// an answer on several lines falls back to the whole completion, so the class named anywhere (even in the think
/// part) scores 1.</item>
/// <item>§4.8.4: normalisation deletes ASCII spaces and underscores and lower-cases (Python <c>lower()</c>); hyphens stay,
/// so <c>globe flower</c> vs <c>globe-flower</c> is 0.</item>
/// <item>§4.8.5: accuracy is 1 iff either normalised string contains the other: <c>BMW</c> for "2012 BMW M3 Coupe",
/// <c>rose or lotus or daisy</c>, a single letter, and the <b>empty answer</b> all score 1 ([I#70], [I#79]).</item>
/// </list>
/// <para>Ranges: accuracy ∈ {0, 1}; format ∈ {0, 1}.</para>
/// <para><b>strict</b>: answer read with DOTALL; normalisation lower-cases and deletes whitespace, underscores and
/// hyphens, and trims surrounding periods and quotes; accuracy is 1 iff the answer <b>equals</b> the normalised
/// ground truth or one of its aliases. So an empty answer, a brand-only name and an answer that names several classes
/// ("A or B", "A, B") all score 0 (the latter reported as <see cref="ParseFailureKind.MultipleClasses"/>).</para>
/// </remarks>
public sealed class ClassificationReward : TaskReward
{
    readonly Dictionary<string, HashSet<string>> aliases = new(StringComparer.Ordinal);

    /// <param name="preset">visual-rft (official substring match) or strict (exact match).</param>
    /// <param name="aliases">strict only: extra accepted names per ground-truth class (keys and values are normalised
    /// like answers), e.g. "Boeing 737-800" → ["737-800", "B738"].</param>
    public ClassificationReward(RewardPreset preset = RewardPreset.VisualRft, IReadOnlyDictionary<string, IReadOnlyList<string>>? aliases = null)
        : base(VisualTask.Classification, preset,
        [
            new("accuracy", preset == RewardPreset.VisualRft
                ? "1 iff the normalised answer and ground truth contain one another (substring, spec §4.8)"
                : "1 iff the normalised answer equals the normalised ground truth or one of its aliases", 0, 1),
            FormatComponent(preset),
        ])
    {
        if (aliases is null) return;
        if (preset == RewardPreset.VisualRft) throw new ArgumentException("class aliases are a strict-preset feature; the visual-rft preset reproduces the official substring match");
        foreach (var (name, list) in aliases)
        {
            var key = ClassNames.Normalize(name, RewardPreset.Strict);
            if (!this.aliases.TryGetValue(key, out var set)) this.aliases[key] = set = new(StringComparer.Ordinal);
            foreach (var a in list) set.Add(ClassNames.Normalize(a, RewardPreset.Strict));
        }
    }

    private protected override (double[] Values, ParsedAnswer Answer, ParseFailure? Failure, IReadOnlyList<BoxMatch> Matches) Evaluate(string completion, string solution)
    {
        double format = Format(completion, Preset);
        var answer = Answers.ParseClassification(completion, Preset);
        string gt = ClassNames.Normalize(Answers.Answer(solution, VisualTask.Classification, Preset), Preset);
        if (Preset == RewardPreset.VisualRft)
        {
            bool hit = gt.Contains(answer.Normalized, StringComparison.Ordinal) || answer.Normalized.Contains(gt, StringComparison.Ordinal);
            return ([hit ? 1 : 0, format], answer, hit ? null : Wrong(answer, gt), []);
        }
        if (answer.Failure is not null) return ([0, format], answer, answer.Failure, []);
        if (gt.Length == 0) return ([0, format], answer, new(ParseFailureKind.InvalidSolution, "the solution names no class"), []);
        bool ok = answer.Normalized == gt || (aliases.TryGetValue(gt, out var set) && set.Contains(answer.Normalized));
        if (ok) return ([1, format], answer, null, []);
        return ([0, format], answer, ClassNames.NamesSeveral(answer.AnswerText)
            ? new(ParseFailureKind.MultipleClasses, $"'{Excerpt.Of(answer.AnswerText)}' names several classes")
            : Wrong(answer, gt), []);
    }

    static ParseFailure Wrong(ClassificationAnswer answer, string gt) =>
        new(ParseFailureKind.WrongClass, $"'{Excerpt.Of(answer.Normalized)}' does not match '{Excerpt.Of(gt)}'");
}
