using System.Text.RegularExpressions;
using VisualRft.Geometry;

namespace VisualRft.Rewards.Parsing;

/// <summary>
/// The strict preset's reader for detection answers: the official repairs that cannot be exploited are kept
/// (<c>[[</c>/<c>]]</c> squashing, single → double quotes, cutting a truncated last box), newlines are plain JSON
/// whitespace, "No Objects" is an empty prediction, and every element must be an object with a <c>Position</c> of four
/// finite numbers and a finite <c>Confidence</c> in [0, 1] (booleans are not numbers here). One invalid element makes
/// the whole answer invalid.
/// </summary>
static partial class StrictDetection
{
    // `\s*(?:\.\s*)?` rather than `\s*\.?\s*`: the same language, but a whitespace run has one way to match, so a long
    // run followed by other text fails in linear time instead of trying every split of the run.
    [GeneratedRegex(@"\A['""]?\s*no\s*objects?\s*(?:\.\s*)?['""]?\z", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex NoObjects();

    /// <summary>Reads a completion's answer; the boxes are the first of each position with its corners normalised (spec
    /// §4.3.5).</summary>
    public static DetectionAnswer Parse(string completion)
    {
        var (answer, content) = DetectionParse.Locate(completion, DetectionReader.Strict);
        return Read(answer, content, removeDuplicates: true);
    }

    /// <summary>Reads a solution: every box counts, duplicates too (each is a ground-truth box).</summary>
    public static DetectionAnswer ParseSolution(string solution)
    {
        var (answer, content) = DetectionParse.Locate(solution, DetectionReader.Strict);
        return Read(answer, content, removeDuplicates: false);
    }

    static DetectionAnswer Read(string answer, string content, bool removeDuplicates)
    {
        if (answer.Length == 0) return new(answer, [], false, new(ParseFailureKind.EmptyAnswer, "the answer is empty"));
        if (NoObjects().IsMatch(answer)) return new(answer, [], true, null);
        if (!DetectionParse.TryLoad(content, out var list, out var error, out _))
            return new(answer, [], false, new(ParseFailureKind.InvalidJson, $"not a JSON box list ({error})"));
        if (list.Kind != PyKind.List) return new(answer, [], false, new(ParseFailureKind.NotAList, $"parsed a {list.TypeName}, not a list"));
        var boxes = new List<DetectionBox>();
        foreach (var item in list.Items)
        {
            var failure = Validate(item, out var box);
            if (failure is not null) return new(answer, boxes, false, failure);
            boxes.Add(box);
        }
        return new(answer, removeDuplicates ? DetectionParse.FirstOfEach(boxes, b => b.Position.Normalized()) : boxes, false, null);
    }

    static ParseFailure? Validate(PyValue item, out DetectionBox box)
    {
        box = new(default, 0);
        if (item.Kind != PyKind.Dict || !item.TryGet("Position", out var p) || !item.TryGet("Confidence", out var c))
            return new(ParseFailureKind.InvalidElement, $"element {item} is not an object with 'Position' and 'Confidence'");
        if (p.Kind != PyKind.List || p.Items.Count != 4 || p.Items.Any(v => v.Kind is not (PyKind.Int or PyKind.Float) || !double.IsFinite(v.Number)))
            return new(ParseFailureKind.InvalidPosition, $"Position {p} is not four finite numbers");
        if (c.Kind is not (PyKind.Int or PyKind.Float))
            return new(ParseFailureKind.InvalidConfidence, $"Confidence {c} is not a number");
        if (!double.IsFinite(c.Number) || c.Number < 0 || c.Number > 1)
            return new(ParseFailureKind.InvalidConfidence, $"Confidence {c} is not a finite number in [0, 1]");
        box = new(new Box(p.Items[0].Number, p.Items[1].Number, p.Items[2].Number, p.Items[3].Number), c.Number);
        return null;
    }
}

/// <summary>Grounding answers: <c>(x1,y1),(x2,y2)</c> boxes in the 0–1000 frame.</summary>
static partial class GroundingParsing
{
    /// <summary>The official pattern (spec §4.9 step 3) with Python's <c>\s</c>; <c>\d</c> is Unicode digits in both
    /// Python and .NET (BMP only in .NET).</summary>
    const string S = PyText.Space + "*";

    [GeneratedRegex(@"\(" + S + @"(\d+)" + S + "," + S + @"(\d+)" + S + @"\)" + S + "," + S + @"\(" + S + @"(\d+)" + S + "," + S + @"(\d+)" + S + @"\)",
        RegexOptions.CultureInvariant)]
    private static partial Regex Official();

    /// <summary>strict: ASCII digits, optional decimals.</summary>
    [GeneratedRegex(@"\(\s*([0-9]+(?:\.[0-9]+)?)\s*,\s*([0-9]+(?:\.[0-9]+)?)\s*\)\s*,\s*\(\s*([0-9]+(?:\.[0-9]+)?)\s*,\s*([0-9]+(?:\.[0-9]+)?)\s*\)", RegexOptions.CultureInvariant)]
    private static partial Regex StrictPattern();

    public static GroundingAnswer Parse(string answer, RewardPreset preset)
    {
        if (preset == RewardPreset.VisualRft)
        {
            var m = Official().Matches(answer);
            if (m.Count == 0) return new(answer, null, 0, new(ParseFailureKind.NoBox, "no (x1,y1),(x2,y2) box found"));
            // The official point list is [top-left of every match] + [bottom-right of every match]; corners = points[0], points[1].
            var tl = m[0];
            var second = m.Count == 1 ? (m[0].Groups[3], m[0].Groups[4]) : (m[1].Groups[1], m[1].Groups[2]);
            double?[] v = [PyInt(tl.Groups[1].Value), PyInt(tl.Groups[2].Value), PyInt(second.Item1.Value), PyInt(second.Item2.Value)];
            if (v.Any(x => x is null))
                return new(answer, null, m.Count, new(ParseFailureKind.OfficialCodeError, "OverflowError: integer division result too large for a float"));
            return new(answer, new Box(v[0]!.Value, v[1]!.Value, v[2]!.Value, v[3]!.Value), m.Count, null);
        }
        if (answer.Length == 0) return new(answer, null, 0, new(ParseFailureKind.EmptyAnswer, "the answer is empty"));
        var s = StrictPattern().Matches(answer);
        if (s.Count == 0) return new(answer, null, 0, new(ParseFailureKind.NoBox, "no (x1,y1),(x2,y2) box found"));
        if (s.Count > 1) return new(answer, null, s.Count, new(ParseFailureKind.MultipleBoxes, $"{s.Count} boxes given; exactly one is expected"));
        var g = s[0].Groups;
        var box = new Box(D(g[1].Value), D(g[2].Value), D(g[3].Value), D(g[4].Value));
        if (!box.IsFinite) return new(answer, null, 1, new(ParseFailureKind.InvalidPosition, "a coordinate is too large"));
        return new(answer, box.Normalized(), 1, null);
    }

    static double D(string s) => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Python's <c>int(digits)</c> (any Unicode decimal digits) as a double in the 0–1000 frame, or null where the
    /// official <c>int(x) / 1000</c> raises OverflowError. Exact up to 15 digits; longer numbers are rounded once more
    /// than Python's correctly rounded int division (differences only beyond 10^15).
    /// </summary>
    static double? PyInt(string digits)
    {
        var ascii = new string(digits.Select(ch => (char)('0' + (int)char.GetNumericValue(ch))).ToArray());
        double v = double.Parse(ascii, System.Globalization.CultureInfo.InvariantCulture);
        return double.IsFinite(v / 1000) ? v : null;
    }
}

/// <summary>Class-name normalisation for both presets.</summary>
public static partial class ClassNames
{
    /// <summary>
    /// visual-rft (spec §4.8 step 4): delete ASCII spaces and underscores, then Python <c>lower()</c>; hyphens and other
    /// punctuation stay. strict: Python <c>lower()</c>, delete all whitespace, underscores and hyphens, then trim
    /// surrounding periods and quotes — so "Globe-Flower." and "globe flower" agree.
    /// </summary>
    public static string Normalize(string name, RewardPreset preset)
    {
        if (preset == RewardPreset.VisualRft) return PyText.Lower(name.Replace(" ", "").Replace("_", ""));
        var kept = PyText.Lower(name).Where(ch => !PyText.IsSpace(ch) && ch is not ('_' or '-'));
        return new string(kept.ToArray()).Trim('.', '"', '\'', '`');
    }

    [GeneratedRegex(@"\s(?:or|and|vs\.?|versus)\s|[,;|&\n]|\s/\s", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Separator();

    /// <summary>Whether an answer reads as naming several classes ("A or B", "A, B", "A; B", "A / B", one per line).
    /// A slash without spaces is not a separator, because real labels have one (FGVC-Aircraft "F/A-18").</summary>
    public static bool NamesSeveral(string answer) => Separator().IsMatch(answer.Trim());
}
