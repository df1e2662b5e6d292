using VisualRft.Geometry;
using VisualRft.IO;

namespace VisualRft.Rewards.Parsing;

/// <summary>
/// A line-by-line emulation of the official detection rewards (<c>accuracy_iou</c> + <c>accuracy_confidence</c> of
/// [R] <c>grpo.py</c>, visual-rft-spec.md §4.3–4.6) on Python values, so that every exception the Python code would
/// raise (and turn into reward 0) is raised at the same point. Both rewards share the pipeline; they differ only in
/// the final formula, and they fail together.
/// </summary>
static class OfficialDetection
{
    /// <summary>A Python exception the official code would raise; its <c>try/except</c> makes the reward 0.</summary>
    sealed class PyError(string message) : Exception(message);

    /// <summary>Spec §4.3 steps 1–3 (<c>extract_bbox</c>): the answer text and the parsed list, or null and why where
    /// Python returns None.</summary>
    static (string Answer, PyValue? List, string Error) Read(string completion)
    {
        var (answer, content) = DetectionParse.Locate(completion, DetectionReader.OfficialReward);
        return DetectionParse.TryLoad(content, out var list, out var error, out var repaired)
            ? (answer, list, "")
            : (answer, null, $"json.loads failed ({error}) on: {Excerpt.Of(repaired)}");
    }

    /// <summary>The official reader's view of a completion, as boxes for display.</summary>
    public static DetectionAnswer Parse(string completion)
    {
        var (answer, list, error) = Read(completion);
        return Describe(answer, list, error);
    }

    /// <summary>Every element with four numbers as Position and a numeric Confidence, the first of each position (the
    /// boxes the matching sees, since a Position equal to a valid one is valid), and the first reason an element is not.</summary>
    static DetectionAnswer Describe(string answer, PyValue? list, string error)
    {
        bool noObjects = PyText.Strip(answer) == "No Objects";
        if (list is null) return new(answer, [], noObjects, new(ParseFailureKind.InvalidJson, error));
        if (list.Kind != PyKind.List || list.Items.Count == 0)
            return new(answer, [], noObjects, new(ParseFailureKind.NotAList, list.Kind == PyKind.List ? "the list is empty" : $"parsed a {list.TypeName}, not a list"));
        var boxes = new List<DetectionBox>();
        ParseFailure? failure = null;
        foreach (var item in list.Items)
        {
            if (TryBox(item, out var box, out var why)) boxes.Add(box);
            else failure ??= why;
        }
        return new(answer, DetectionParse.FirstOfEach(boxes, b => b.Position), noObjects, failure);
    }

    static bool TryBox(PyValue item, out DetectionBox box, out ParseFailure failure)
    {
        box = new(default, 0);
        failure = null!;
        if (item.Kind != PyKind.Dict || !item.TryGet("Position", out var p) || !item.TryGet("Confidence", out var c))
        {
            failure = new(ParseFailureKind.InvalidElement, $"element {item} is not a dict with 'Position' and 'Confidence'");
            return false;
        }
        if (p.Kind != PyKind.List || p.Items.Count != 4 || p.Items.Any(v => !v.IsNumber))
        {
            failure = new(ParseFailureKind.InvalidPosition, $"Position {p} is not 4 numbers");
            return false;
        }
        if (!c.IsNumber)
        {
            failure = new(ParseFailureKind.InvalidConfidence, $"Confidence {c} is not a number");
            return false;
        }
        box = new(new Box(p.Items[0].Number, p.Items[1].Number, p.Items[2].Number, p.Items[3].Number), c.Number);
        return true;
    }

    /// <summary>(R_IoU, R_conf) of spec §4.5/§4.6, the failure that made them 0 if any, the answer as <see cref="Parse"/>
    /// reads it (from the same parse), and how the matching paired its boxes with the solution's (empty on a failure).</summary>
    public static (double Iou, double Confidence, ParseFailure? Failure, DetectionAnswer Answer, IReadOnlyList<BoxMatch> Matches) Score(string completion, string solution)
    {
        var (answer, pred, predError) = Read(completion);
        var read = Describe(answer, pred, predError);
        var gt = DetectionParse.ExtractBboxContent(PyText.Strip(solution)) is { } content && DetectionParse.TryLoad(content, out var list, out _, out _) ? list : null;
        try
        {
            // `if student_answer_bbox==None or type(student_answer_bbox[0])!=dict: reward = 0.0`
            if (pred is null) return (0, 0, new(ParseFailureKind.InvalidJson, predError), read, []);
            var first = Index(pred, 0);
            if (first.Kind != PyKind.Dict) return (0, 0, new(ParseFailureKind.InvalidElement, $"first element is a {first.TypeName}, not a dict"), read, []);
            var preds = DetectionParse.FirstOfEach(pred.Items, box => HashableTuple(Get(box, "Position")), PyTupleEquality.Instance);
            var results = SortAndCalculateIou(gt, preds);
            int nGt = Len(gt);
            double iouSum = 0.0, confSum = 0.0;
            foreach (var r in results)
            {
                iouSum += r.Iou;
                confSum += r.Iou == 0 ? (1 - r.Iou) * (1 - r.Confidence) : r.Confidence;   // spec §4.6: c if matched, else 1 − c
            }
            double rIou = nGt >= results.Count ? iouSum / nGt : iouSum / results.Count;   // "v2": ÷ max(n_gt, n_pred)
            double rConf = confSum / results.Count;
            return (Clip(rIou), Clip(rConf), null, read, Matches(preds, results));
        }
        catch (PyError e)
        {
            return (0, 0, new(ParseFailureKind.OfficialCodeError, e.Message), read, []);
        }
    }

    /// <summary>The results by index into the answer's boxes: the valid elements of the de-duplicated list, in order (an
    /// element never compared because every ground-truth box was taken may have no valid Position; it has no box).</summary>
    static List<BoxMatch> Matches(List<PyValue> preds, List<Pairing> results)
    {
        var boxIndex = new int[preds.Count];
        for (int i = 0, valid = 0; i < preds.Count; i++) boxIndex[i] = TryBox(preds[i], out _, out _) ? valid++ : -1;
        return [.. results.Where(r => boxIndex[r.Prediction] >= 0)
            .Select(r => new BoxMatch(boxIndex[r.Prediction], r.Truth >= 0 ? r.Truth : null, r.Best))];
    }

    /// <summary><c>if reward &gt; 1: 1.0; if reward &lt; 0: 0.0</c> — NaN passes through both tests unchanged (spec §4.7, [I#115]).</summary>
    static double Clip(double r) => r > 1 ? 1.0 : r < 0 ? 0.0 : r;

    static PyValue Index(PyValue v, int i) => v.Kind switch
    {
        PyKind.List => i < v.Items.Count ? v.Items[i] : throw new PyError("IndexError: list index out of range"),
        PyKind.Str => i < v.Str.Length ? PyValue.String(v.Str[i].ToString()) : throw new PyError("IndexError: string index out of range"),
        _ => throw new PyError($"TypeError: '{v.TypeName}' object is not subscriptable"),
    };

    static int Len(PyValue? v) => v is null ? throw new PyError("TypeError: object of type 'NoneType' has no len()")
        : v.Kind switch
        {
            PyKind.List => v.Items.Count,
            PyKind.Dict => v.Entries.Count,
            PyKind.Str => v.Str.Length,
            _ => throw new PyError($"TypeError: object of type '{v.TypeName}' has no len()"),
        };

    /// <summary><c>bbox['Key']</c>.</summary>
    static PyValue Get(PyValue v, string key)
    {
        if (v.Kind != PyKind.Dict)
            throw new PyError(v.Kind is PyKind.List or PyKind.Str ? $"TypeError: {v.TypeName} indices must be integers or slices, not str"
                : $"TypeError: '{v.TypeName}' object is not subscriptable");
        return v.TryGet(key, out var value) ? value : throw new PyError($"KeyError: '{key}'");
    }

    /// <summary><c>tuple(x)</c> followed by hashing it (set membership).</summary>
    static IReadOnlyList<PyValue> HashableTuple(PyValue v)
    {
        var items = v.Kind switch
        {
            PyKind.List => v.Items,
            PyKind.Str => v.Str.Select(ch => PyValue.String(ch.ToString())).ToList(),
            PyKind.Dict => v.Entries.Select(e => PyValue.String(e.Key)).ToList(),
            _ => throw new PyError($"TypeError: '{v.TypeName}' object is not iterable"),
        };
        foreach (var item in items)
            if (item.Kind is PyKind.List or PyKind.Dict) throw new PyError($"TypeError: unhashable type: '{item.TypeName}'");
        return items;
    }

    /// <summary>Spec §4.4, <c>sort_and_calculate_iou</c>: greedy, confidence-ordered, one-to-one, strict IoU &gt; 0.5.
    /// The official loop re-reads every unmatched ground-truth box for every prediction; here each box is unpacked once,
    /// at its first comparison, which is where the official code would first raise for it. The comparisons themselves
    /// stay O(predictions × ground-truth boxes), as in the original.</summary>
    static List<Pairing> SortAndCalculateIou(PyValue? gt, List<PyValue> preds)
    {
        var keys = preds.Select(p => Get(p, "Confidence")).ToList();
        // Every confidence meets Python arithmetic later (1 − c, or 0.0 + c), which raises for non-numbers.
        foreach (var k in keys)
            if (!k.IsNumber) throw new PyError($"TypeError: unsupported operand type(s) for -: 'int' and '{k.TypeName}'");
        var order = PySort.SortedIndicesDescending(keys.Select(k => k.Number).ToArray());
        if (gt is null) throw new PyError("TypeError: 'NoneType' object is not iterable (the solution has no parsable box list)");
        if (gt.Kind != PyKind.List) throw new PyError($"TypeError: cannot iterate the solution's {gt.TypeName}");
        int n = gt.Items.Count;
        var matched = new bool[n];
        var truth = new Quad?[n];
        var results = new List<Pairing>();
        foreach (int i in order)
        {
            double best = 0;
            int bestJ = -1;
            Quad? pred = null;
            for (int j = 0; j < n; j++)
            {
                if (matched[j]) continue;
                // calculate_iou(gt[j]['Position'], pred['Position']): the gt box is read and unpacked before the prediction.
                var g = truth[j] ??= Unpack4(Get(gt.Items[j], "Position"));
                var p = pred ??= Unpack4(Get(preds[i], "Position"));
                double iou = CalculateIou(g, p);
                if (iou > best) { best = iou; bestJ = j; }
            }
            bool match = best > 0.5;
            if (match) matched[bestJ] = true;
            results.Add(new(i, match ? bestJ : -1, best, match ? best : 0, keys[i].Number));
        }
        return results;
    }

    /// <summary>One entry of the official results list, (IoU if matched else 0, confidence), with which prediction and
    /// ground-truth box (−1: none) it was and the best IoU the prediction found.</summary>
    readonly record struct Pairing(int Prediction, int Truth, double Best, double Iou, double Confidence);

    readonly record struct Quad(double X1, double Y1, double X2, double Y2);

    /// <summary>Spec §4.4, <c>calculate_iou(gt, pred)</c> with Python's max/min (first argument wins ties and NaN
    /// comparisons), <c>xi2 &lt;= xi1 or yi2 &lt;= yi1 → 0.0</c>, and ZeroDivisionError when the union is 0 (possible only
    /// through floating-point underflow).</summary>
    static double CalculateIou(Quad a, Quad b)
    {
        try { return Box.IoU(new Box(a.X1, a.Y1, a.X2, a.Y2), new Box(b.X1, b.Y1, b.X2, b.Y2), IouVariant.OfficialReward); }
        catch (DivideByZeroException) { throw new PyError("ZeroDivisionError: float division by zero"); }
    }

    /// <summary><c>x1, y1, x2, y2 = position</c>, then arithmetic: 4 elements, all numbers (bool counts as a number).
    /// A string of 4 characters unpacks in Python too and then fails at the comparison with the other box.</summary>
    static Quad Unpack4(PyValue v)
    {
        var items = v.Kind switch
        {
            PyKind.List => v.Items,
            PyKind.Str => v.Str.Select(ch => PyValue.String(ch.ToString())).ToList(),
            PyKind.Dict => v.Entries.Select(e => PyValue.String(e.Key)).ToList(),
            _ => throw new PyError($"TypeError: cannot unpack non-iterable {v.TypeName} object"),
        };
        if (items.Count != 4)
            throw new PyError(items.Count > 4 ? "ValueError: too many values to unpack (expected 4)" : $"ValueError: not enough values to unpack (expected 4, got {items.Count})");
        foreach (var item in items)
            if (!item.IsNumber) throw new PyError($"TypeError: '>' not supported between a number and '{item.TypeName}'");
        return new(items[0].Number, items[1].Number, items[2].Number, items[3].Number);
    }

}
