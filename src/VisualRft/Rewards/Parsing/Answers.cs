using System.Text.RegularExpressions;

namespace VisualRft.Rewards.Parsing;

/// <summary>
/// Locating the answer in a completion, and the format check, for both presets. Never throws.
/// </summary>
public static partial class Answers
{
    /// <summary>The official <c>&lt;answer&gt;(.*?)&lt;/answer&gt;</c> <b>without DOTALL</b>: an answer that spans a newline does
    /// not match (spec §4.3 step 1, §4.8 step 3).</summary>
    [GeneratedRegex("<answer>(.*?)</answer>", RegexOptions.CultureInvariant)]
    internal static partial Regex AnswerSingleLine();

    /// <summary>The same with DOTALL; the official LISA reward uses it for the completion (spec §4.9 step 2).</summary>
    [GeneratedRegex("<answer>(.*?)</answer>", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    internal static partial Regex AnswerDotAll();

    [GeneratedRegex(@"\A<think>.*?</think>" + PyText.Space + @"*<answer>.*?</answer>\z", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex OfficialFormatRegex();

    [GeneratedRegex(@"\A<think>(?:(?!</?think>|</?answer>).)*</think>" + PyText.Space + @"*<answer>(?:(?!</?think>|</?answer>).)*</answer>\z",
        RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex StrictFormatRegex();

    /// <summary>
    /// The format reward's test. visual-rft (spec §4.1): Python <c>re.fullmatch(r"&lt;think&gt;.*?&lt;/think&gt;\s*&lt;answer&gt;.*?&lt;/answer&gt;", s, DOTALL)</c>
    /// on the raw completion — any character (even a newline) before <c>&lt;think&gt;</c> or after <c>&lt;/answer&gt;</c> fails,
    /// and several think/answer blocks still pass because the lazy <c>.*?</c> can expand over them. strict: outer
    /// whitespace is stripped first, and exactly one think block followed by one answer block is required.
    /// </summary>
    public static bool HasFormat(string completion, RewardPreset preset) => preset == RewardPreset.VisualRft
        ? OfficialFormatRegex().IsMatch(completion)
        : StrictFormatRegex().IsMatch(PyText.Strip(completion));

    /// <summary>
    /// The answer text a reward reads. visual-rft, detection and classification: the first single-line
    /// <c>&lt;answer&gt;…&lt;/answer&gt;</c>, else the whole completion (spec §4.3, §4.8); grounding: the same with DOTALL
    /// (§4.9). strict, every task: the text between the first <c>&lt;answer&gt;</c> and the next <c>&lt;/answer&gt;</c>, to the end
    /// when the closing tag is missing (a truncated completion), else the whole completion. Always stripped of outer
    /// whitespace.
    /// </summary>
    public static string Answer(string completion, VisualTask task, RewardPreset preset)
    {
        if (preset == RewardPreset.VisualRft)
            return PyText.SearchGroupOrWhole(task == VisualTask.Grounding ? AnswerDotAll() : AnswerSingleLine(), completion);
        int open = completion.IndexOf("<answer>", StringComparison.Ordinal);
        if (open < 0) return PyText.Strip(completion);
        int start = open + "<answer>".Length;
        int close = completion.IndexOf("</answer>", start, StringComparison.Ordinal);
        return PyText.Strip(close < 0 ? completion[start..] : completion[start..close]);
    }

    /// <summary>
    /// The first <c>&lt;think&gt;</c> and <c>&lt;answer&gt;</c> blocks as written, for showing a completion (null when a tag is
    /// missing; an answer cut off before <c>&lt;/answer&gt;</c> runs to the end). Rewards read answers through <see cref="Answer"/>.
    /// </summary>
    public static (string? Think, string? Answer) Blocks(string completion)
    {
        static string? Block(string text, string open, string close)
        {
            int start = text.IndexOf(open, StringComparison.Ordinal);
            if (start < 0) return null;
            start += open.Length;
            int end = text.IndexOf(close, start, StringComparison.Ordinal);
            return end < 0 ? text[start..] : text[start..end];
        }
        return (Block(completion, "<think>", "</think>"), Block(completion, "<answer>", "</answer>"));
    }

    /// <summary>Reads the detection answer of a completion as the given preset's reward does.</summary>
    public static DetectionAnswer ParseDetection(string completion, RewardPreset preset) => preset == RewardPreset.VisualRft
        ? OfficialDetection.Parse(completion)
        : StrictDetection.ParseAnswer(Answer(completion, VisualTask.Detection, preset));

    /// <summary>Reads the grounding answer of a completion as the given preset's reward does.</summary>
    public static GroundingAnswer ParseGrounding(string completion, RewardPreset preset) =>
        GroundingParsing.Parse(Answer(completion, VisualTask.Grounding, preset), preset);

    /// <summary>Reads the class answer of a completion as the given preset's reward does.</summary>
    public static ClassificationAnswer ParseClassification(string completion, RewardPreset preset)
    {
        string answer = Answer(completion, VisualTask.Classification, preset);
        string norm = ClassNames.Normalize(answer, preset);
        return new ClassificationAnswer(answer, norm,
            preset == RewardPreset.Strict && norm.Length == 0 ? new ParseFailure(ParseFailureKind.EmptyAnswer, "the answer is empty") : null);
    }
}
