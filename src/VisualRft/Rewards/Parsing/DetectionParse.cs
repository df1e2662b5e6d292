namespace VisualRft.Rewards.Parsing;

/// <summary>Whose rules read a detection answer. The three agree on the repairs (brackets squashed, a truncated list cut
/// at its last complete box, single quotes, Python's json.loads, exact duplicate positions removed); they differ only in
/// where the answer is found and what is deleted first.</summary>
enum DetectionReader
{
    /// <summary>The official reward (spec §4.3 steps 1–3): the first single-line <c>&lt;answer&gt;…&lt;/answer&gt;</c> (else the
    /// whole completion), then brackets squashed and every newline deleted.</summary>
    OfficialReward,
    /// <summary>The strict preset: the text from the first <c>&lt;answer&gt;</c> to the next <c>&lt;/answer&gt;</c> or the end
    /// (newlines are JSON whitespace), then brackets squashed.</summary>
    Strict,
    /// <summary>The evaluation script <c>Qwen2_VL_{coco|lvis}_infere.py</c> (spec §6.2): brackets squashed and newlines and
    /// the literal <c>, ...</c> deleted from the whole response, then the first <c>&lt;answer&gt;…&lt;/answer&gt;</c>.</summary>
    EvaluationScript,
}

/// <summary>
/// The one detection parse: where each reader finds the answer (<see cref="Locate"/>), the shared repairs and
/// <c>json.loads</c> (<see cref="TryLoad"/>), and duplicate removal (<see cref="FirstOfEach"/>). What the readers do with
/// the parsed list differs — the official reward raises where Python would, strict validates every element, the
/// evaluation script keeps the boxes before a failing one — and lives with each of them.
/// </summary>
static class DetectionParse
{
    const string Open = "<answer>", Close = "</answer>";

    /// <summary>The answer text as the reader sees it (what a view shows) and the text its box list is read from.</summary>
    public static (string Answer, string Content) Locate(string text, DetectionReader reader)
    {
        switch (reader)
        {
            case DetectionReader.OfficialReward:
                // The answer is wrapped in tags again and extract_bbox reads between the first <answer> and the first
                // </answer> of that text, which differs from the answer itself only when the answer holds a tag.
                string student = SquashBrackets(Open + Answers.SearchAnswerOrWhole(text, dotAll: false) + Close).Replace("\n", "");
                return (student[Open.Length..^Close.Length], ExtractBboxContent(student)!);
            case DetectionReader.EvaluationScript:
                string answer = Answers.SearchAnswerOrWhole(SquashBrackets(text).Replace("\n", "").Replace(", ...", ""), dotAll: false);
                return (answer, answer);
            default:
                string strict = Answers.Answer(text, VisualTask.Detection, RewardPreset.Strict);
                return (strict, SquashBrackets(strict));
        }
    }

    /// <summary><c>extract_bbox</c>'s search: the text after the first <c>&lt;answer&gt;</c> up to the first <c>&lt;/answer&gt;</c>
    /// anywhere (or the end; empty when that closing tag comes first), or null without an opening tag.</summary>
    public static string? ExtractBboxContent(string s)
    {
        int tag = s.IndexOf(Open, StringComparison.Ordinal);
        if (tag < 0) return null;
        int start = tag + Open.Length;
        int end = s.IndexOf(Close, StringComparison.Ordinal);
        if (end == -1) end = s.Length;
        return end > start ? s[start..end] : "";
    }

    /// <summary><c>[[</c> → <c>[</c> and <c>]]</c> → <c>]</c>: the official repair for a list (or a Position) written doubled.</summary>
    static string SquashBrackets(string s) => s.Replace("[[", "[").Replace("]]", "]");

    /// <summary>
    /// <c>extract_bbox</c>'s repair and parse: text not ending in <c>]</c> is cut at its last <c>},</c> and closed with
    /// <c>}]</c> (this drops a partial last box — and also a complete last box when text follows the list), every
    /// <c>'</c> becomes <c>"</c>, then Python <c>json.loads</c>. <paramref name="repaired"/> is the text that was parsed.
    /// </summary>
    public static bool TryLoad(string content, out PyValue value, out string error, out string repaired)
    {
        if (!content.EndsWith(']'))
        {
            int cut = content.LastIndexOf("},", StringComparison.Ordinal);
            content = (cut >= 0 ? content[..cut] : content) + "}]";
        }
        repaired = content.Replace('\'', '"');
        return PyJson.TryLoads(repaired, out value, out error);
    }

    /// <summary>Spec §4.3 step 5, <c>remove_duplicates</c>: the first of each key, in order. Keys are taken in order, so a
    /// key function that raises does so at the element where Python would. The official code searches a list of the
    /// keys seen (quadratic); a hash set gives the same answer in linear time.</summary>
    public static List<T> FirstOfEach<T, TKey>(IEnumerable<T> items, Func<T, TKey> key, IEqualityComparer<TKey>? equality = null)
    {
        var seen = new HashSet<TKey>(equality);
        var unique = new List<T>();
        foreach (var item in items)
            if (seen.Add(key(item))) unique.Add(item);
        return unique;
    }
}

/// <summary>Python <c>==</c> and <c>hash</c> on tuples of hashable scalars (a Position turned into a tuple). NaN equals NaN
/// here: json.loads returns the same NaN object every time and tuple comparison checks identity first, so duplicate NaN
/// positions are removed too. True == 1 == 1.0 and 0.0 == −0.0, as in Python. On four numbers this is
/// <see cref="Geometry.Box"/>'s own equality.</summary>
sealed class PyTupleEquality : IEqualityComparer<IReadOnlyList<PyValue>>
{
    public static readonly PyTupleEquality Instance = new();

    static bool Same(PyValue a, PyValue b) =>
        a.IsNumber && b.IsNumber ? a.Number == b.Number || (double.IsNaN(a.Number) && double.IsNaN(b.Number))
        : a.Kind == PyKind.Str && b.Kind == PyKind.Str ? a.Str == b.Str
        : a.Kind == PyKind.None && b.Kind == PyKind.None;

    public bool Equals(IReadOnlyList<PyValue>? x, IReadOnlyList<PyValue>? y)
    {
        if (x!.Count != y!.Count) return false;
        for (int i = 0; i < x.Count; i++)
            if (!Same(x[i], y[i])) return false;
        return true;
    }

    public int GetHashCode(IReadOnlyList<PyValue> t)
    {
        var h = new HashCode();
        h.Add(t.Count);
        foreach (var v in t)
            h.Add(v.IsNumber ? (v.Number == 0 ? 0 : double.IsNaN(v.Number) ? 1 : v.Number.GetHashCode())
                : v.Kind == PyKind.Str ? string.GetHashCode(v.Str, StringComparison.Ordinal) : 2);
        return h.ToHashCode();
    }
}
