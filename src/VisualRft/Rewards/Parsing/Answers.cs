namespace VisualRft.Rewards.Parsing;

/// <summary>
/// Locating the answer in a completion, and the format check, for both presets. Never throws.
/// </summary>
public static class Answers
{
    const string Open = "<answer>", Close = "</answer>", ThinkOpen = "<think>", ThinkClose = "</think>";

    /// <summary>
    /// Python <c>re.search(r"&lt;answer&gt;(.*?)&lt;/answer&gt;", text)</c>, with DOTALL when <paramref name="dotAll"/>: the
    /// span of group 1, or false when there is no match. Without DOTALL (spec §4.3 step 1, §4.8 step 3) an answer that
    /// spans a newline does not match; with it (the official LISA completion, §4.9 step 2) the first tag pair matches.
    /// </summary>
    /// <remarks>A scan instead of a regex: the lazy pattern retries from every <c>&lt;answer&gt;</c>, which is quadratic on a
    /// line full of unclosed tags. Here the search for the closing tag is shared by all the openings before it, and a
    /// newline rules out every opening before it, so each character is looked at a bounded number of times.</remarks>
    internal static bool TrySearchAnswer(string text, bool dotAll, out int start, out int length)
    {
        int from = 0, close = -1;
        while (true)
        {
            int open = text.IndexOf(Open, from, StringComparison.Ordinal);
            if (open < 0) break;
            start = open + Open.Length;
            if (close < start) close = text.IndexOf(Close, start, StringComparison.Ordinal);   // first closing tag after the opening
            if (close < 0) break;
            int newline = dotAll ? -1 : text.IndexOf('\n', start, close - start);
            if (newline < 0) { length = close - start; return true; }
            from = newline + 1;   // `.` does not cross the newline: no opening before it can match
        }
        start = length = 0;
        return false;
    }

    /// <summary><c>re.search(…)</c> → <c>group(1).strip()</c> if found, else <c>text.strip()</c>: the idiom every official
    /// accuracy reward uses to pull the answer out of a completion or a solution.</summary>
    internal static string SearchAnswerOrWhole(string text, bool dotAll) =>
        PyText.Strip(TrySearchAnswer(text, dotAll, out int start, out int length) ? text.Substring(start, length) : text);

    /// <summary>visual-rft (spec §4.1): Python <c>re.fullmatch(r"&lt;think&gt;.*?&lt;/think&gt;\s*&lt;answer&gt;.*?&lt;/answer&gt;", s, DOTALL)</c>.
    /// It holds iff s opens with <c>&lt;think&gt;</c>, closes with <c>&lt;/answer&gt;</c>, and some <c>&lt;/think&gt;</c> followed by
    /// whitespace and <c>&lt;answer&gt;</c> fits between them; the earliest such <c>&lt;/think&gt;</c> leaves the most room, so
    /// it is the only one to test (linear; the regex backtracks over every <c>&lt;/think&gt;</c>).</summary>
    static bool OfficialFormat(string s)
    {
        if (!s.StartsWith(ThinkOpen, StringComparison.Ordinal) || !s.EndsWith(Close, StringComparison.Ordinal)) return false;
        int lastClose = s.Length - Close.Length;
        for (int t = s.IndexOf(ThinkClose, ThinkOpen.Length, StringComparison.Ordinal); t >= 0; t = s.IndexOf(ThinkClose, t + 1, StringComparison.Ordinal))
        {
            int a = t + ThinkClose.Length;
            while (a < s.Length && PyText.IsSpace(s[a])) a++;
            if (string.CompareOrdinal(s, a, Open, 0, Open.Length) == 0) return a + Open.Length <= lastClose;
        }
        return false;
    }

    /// <summary>strict: after <c>&lt;think&gt;</c> the first tag must be <c>&lt;/think&gt;</c>, then whitespace, <c>&lt;answer&gt;</c>,
    /// and the next tag must be the final <c>&lt;/answer&gt;</c>; no other tag anywhere.</summary>
    static bool StrictFormat(string s)
    {
        if (!s.StartsWith(ThinkOpen, StringComparison.Ordinal)) return false;
        int t = NextTag(s, ThinkOpen.Length, out var tag);
        if (tag != ThinkClose) return false;
        int a = t + ThinkClose.Length;
        while (a < s.Length && PyText.IsSpace(s[a])) a++;
        if (string.CompareOrdinal(s, a, Open, 0, Open.Length) != 0) return false;
        int c = NextTag(s, a + Open.Length, out tag);
        return tag == Close && c + Close.Length == s.Length;
    }

    static readonly string[] Tags = [ThinkOpen, ThinkClose, Open, Close];

    /// <summary>The position of the first of the four tags at or after <paramref name="from"/> (and which), or −1.</summary>
    static int NextTag(string s, int from, out string? tag)
    {
        int best = -1;
        tag = null;
        foreach (var candidate in Tags)
        {
            int at = s.IndexOf(candidate, from, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best)) (best, tag) = (at, candidate);
        }
        return best;
    }

    /// <summary>
    /// The format reward's test. visual-rft (spec §4.1): Python <c>re.fullmatch(r"&lt;think&gt;.*?&lt;/think&gt;\s*&lt;answer&gt;.*?&lt;/answer&gt;", s, DOTALL)</c>
    /// on the raw completion — any character (even a newline) before <c>&lt;think&gt;</c> or after <c>&lt;/answer&gt;</c> fails,
    /// and several think/answer blocks still pass because the lazy <c>.*?</c> can expand over them. strict: outer
    /// whitespace is stripped first, and exactly one think block followed by one answer block is required.
    /// </summary>
    public static bool HasFormat(string completion, RewardPreset preset) => preset == RewardPreset.VisualRft
        ? OfficialFormat(completion)
        : StrictFormat(PyText.Strip(completion));

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
            return SearchAnswerOrWhole(completion, dotAll: task == VisualTask.Grounding);
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

    /// <summary>Reads the detection answer of a completion as the given preset's reward does (its boxes the first of each
    /// position, as the reward matches them).</summary>
    public static DetectionAnswer ParseDetection(string completion, RewardPreset preset) => preset == RewardPreset.VisualRft
        ? OfficialDetection.Parse(completion)
        : StrictDetection.Parse(completion);

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
