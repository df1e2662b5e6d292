using VisualRft.Geometry;

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

    /// <summary>Spec §4.3 steps 1–2: answer by the single-line regex (else whole text), wrapped, <c>[[</c>/<c>]]</c> squashed,
    /// every <c>\n</c> deleted.</summary>
    static string StudentText(string completion) =>
        ("<answer>" + PyText.SearchGroupOrWhole(Answers.AnswerSingleLine(), completion) + "</answer>")
            .Replace("[[", "[").Replace("]]", "]").Replace("\n", "");

    /// <summary>Spec §4.3 step 3, <c>extract_bbox</c>: null where Python returns None.</summary>
    static PyValue? ExtractBbox(string s, out string error)
    {
        int tag = s.IndexOf("<answer>", StringComparison.Ordinal);
        if (tag < 0) { error = "no <answer> tag"; return null; }
        int start = tag + "<answer>".Length;
        int end = s.IndexOf("</answer>", StringComparison.Ordinal);
        if (end == -1) end = s.Length;
        string content = end > start ? s[start..end] : "";
        if (!content.EndsWith(']'))
        {
            // Truncation repair: cut at the last "}," and close the list (drops a partial — or a trailing complete — box).
            int cut = content.LastIndexOf("},", StringComparison.Ordinal);
            content = (cut >= 0 ? content[..cut] : content) + "}]";
        }
        content = content.Replace('\'', '"');
        if (PyJson.TryLoads(content, out var value, out error)) return value;
        error = $"json.loads failed ({error}) on: {Shorten(content)}";
        return null;
    }

    /// <summary>The official reader's view of a completion, as boxes for display.</summary>
    public static DetectionAnswer Parse(string completion)
    {
        string student = StudentText(completion);
        string answer = student["<answer>".Length..^"</answer>".Length];
        var list = ExtractBbox(student, out var error);
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
        return new(answer, boxes, noObjects, failure);
    }

    static bool TryBox(PyValue item, out DetectionBox box, out ParseFailure failure)
    {
        box = new(default, 0);
        failure = new(ParseFailureKind.InvalidElement, $"element {Shorten(item.ToString())} is not a dict with 'Position' and 'Confidence'");
        if (item.Kind != PyKind.Dict || !item.TryGet("Position", out var p) || !item.TryGet("Confidence", out var c)) return false;
        if (p.Kind != PyKind.List || p.Items.Count != 4 || p.Items.Any(v => !v.IsNumber))
        {
            failure = new(ParseFailureKind.InvalidPosition, $"Position {Shorten(p.ToString())} is not 4 numbers");
            return false;
        }
        if (!c.IsNumber)
        {
            failure = new(ParseFailureKind.InvalidConfidence, $"Confidence {Shorten(c.ToString())} is not a number");
            return false;
        }
        box = new(new Box(p.Items[0].Number, p.Items[1].Number, p.Items[2].Number, p.Items[3].Number), c.Number);
        return true;
    }

    /// <summary>(R_IoU, R_conf) of spec §4.5/§4.6, with the failure that made them 0 if any.</summary>
    public static (double Iou, double Confidence, ParseFailure? Failure) Score(string completion, string solution)
    {
        var pred = ExtractBbox(StudentText(completion), out var predError);
        var gt = ExtractBbox(PyText.Strip(solution), out _);
        try
        {
            // `if student_answer_bbox==None or type(student_answer_bbox[0])!=dict: reward = 0.0`
            if (pred is null) return (0, 0, new(ParseFailureKind.InvalidJson, predError));
            var first = Index(pred, 0);
            if (first.Kind != PyKind.Dict) return (0, 0, new(ParseFailureKind.InvalidElement, $"first element is a {first.TypeName}, not a dict"));
            var preds = RemoveDuplicates(pred.Items);
            var results = SortAndCalculateIou(gt, preds);
            int nGt = Len(gt);
            double iouSum = 0.0, confSum = 0.0;
            foreach (var (iou, c) in results)
            {
                iouSum += iou;
                confSum += iou == 0 ? (1 - iou) * (1 - c) : c;   // spec §4.6: c if matched, else 1 − c
            }
            double rIou = nGt >= results.Count ? iouSum / nGt : iouSum / results.Count;   // "v2": ÷ max(n_gt, n_pred)
            double rConf = confSum / results.Count;
            return (Clip(rIou), Clip(rConf), null);
        }
        catch (PyError e)
        {
            return (0, 0, new(ParseFailureKind.OfficialCodeError, e.Message));
        }
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
    static List<PyValue> HashableTuple(PyValue v)
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

    /// <summary>Python <c>==</c> on hashable scalars. NaN equals NaN here: json.loads returns the same NaN object
    /// every time and tuple comparison checks identity first, so duplicate NaN positions are removed too.</summary>
    static bool PyEquals(PyValue a, PyValue b) =>
        a.IsNumber && b.IsNumber ? a.Number == b.Number || (double.IsNaN(a.Number) && double.IsNaN(b.Number))
        : a.Kind == PyKind.Str && b.Kind == PyKind.Str ? a.Str == b.Str
        : a.Kind == PyKind.None && b.Kind == PyKind.None;

    /// <summary>Spec §4.3 step 5, <c>remove_duplicates</c>: keeps the first of each exact <c>tuple(Position)</c>.</summary>
    static List<PyValue> RemoveDuplicates(List<PyValue> boxes)
    {
        var seen = new List<List<PyValue>>();
        var unique = new List<PyValue>();
        foreach (var box in boxes)
        {
            var t = HashableTuple(Get(box, "Position"));
            if (seen.Any(s => s.Count == t.Count && s.Zip(t).All(p => PyEquals(p.First, p.Second)))) continue;
            seen.Add(t);
            unique.Add(box);
        }
        return unique;
    }

    /// <summary>Spec §4.4, <c>sort_and_calculate_iou</c>: greedy, confidence-ordered, one-to-one, strict IoU &gt; 0.5.</summary>
    static List<(double Iou, double Confidence)> SortAndCalculateIou(PyValue? gt, List<PyValue> preds)
    {
        var keys = preds.Select(p => Get(p, "Confidence")).ToList();
        // Every confidence meets Python arithmetic later (1 − c, or 0.0 + c), which raises for non-numbers.
        foreach (var k in keys)
            if (!k.IsNumber) throw new PyError($"TypeError: unsupported operand type(s) for -: 'int' and '{k.TypeName}'");
        var order = PySort.SortedIndicesDescending(keys.Select(k => k.Number).ToArray());
        if (gt is null) throw new PyError("TypeError: 'NoneType' object is not iterable (the solution has no parsable box list)");
        if (gt.Kind != PyKind.List) throw new PyError($"TypeError: cannot iterate the solution's {gt.TypeName}");
        var matched = new HashSet<int>();
        var results = new List<(double, double)>();
        foreach (int i in order)
        {
            double best = 0;
            int bestJ = -1;
            for (int j = 0; j < gt.Items.Count; j++)
            {
                if (matched.Contains(j)) continue;
                double iou = CalculateIou(Get(gt.Items[j], "Position"), Get(preds[i], "Position"));
                if (iou > best) { best = iou; bestJ = j; }
            }
            if (best > 0.5) { results.Add((best, keys[i].Number)); matched.Add(bestJ); }
            else results.Add((0, keys[i].Number));
        }
        return results;
    }

    /// <summary>Spec §4.4, <c>calculate_iou(gt, pred)</c> with Python's max/min (first argument wins ties and NaN
    /// comparisons), <c>xi2 &lt;= xi1 or yi2 &lt;= yi1 → 0.0</c>, and ZeroDivisionError when the union is 0 (possible only
    /// through floating-point underflow).</summary>
    static double CalculateIou(PyValue box1, PyValue box2)
    {
        var (x1, y1, x2, y2) = Unpack4(box1);
        var (x12, y12, x22, y22) = Unpack4(box2);
        try { return Box.IoU(new Box(x1, y1, x2, y2), new Box(x12, y12, x22, y22), IouVariant.OfficialReward); }
        catch (DivideByZeroException) { throw new PyError("ZeroDivisionError: float division by zero"); }
    }

    /// <summary><c>x1, y1, x2, y2 = position</c>, then arithmetic: 4 elements, all numbers (bool counts as a number).
    /// A string of 4 characters unpacks in Python too and then fails at the comparison with the other box.</summary>
    static (double, double, double, double) Unpack4(PyValue v)
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
        return (items[0].Number, items[1].Number, items[2].Number, items[3].Number);
    }

    internal static string Shorten(string s) => s.Length <= 120 ? s : s[..117] + "...";
}

/// <summary>
/// CPython's <c>sorted(key=…, reverse=True)</c> on float keys, including its behaviour with NaN keys (every comparison
/// with NaN is false, so the result depends on the algorithm): reverse, stable ascending sort by <c>&lt;</c>, reverse. For
/// fewer than 64 elements CPython's timsort is exactly count_run + binary insertion sort, which is what runs here for
/// any length (for 64+ elements with NaN keys CPython's merges may order differently; no finite-key result differs).
/// </summary>
static class PySort
{
    public static int[] SortedIndicesDescending(double[] keys)
    {
        int n = keys.Length;
        var idx = Enumerable.Range(0, n).Reverse().ToArray();
        var k = idx.Select(i => keys[i]).ToArray();
        if (n > 1)
        {
            // count_run: the initial ascending or strictly descending run; a descending run is reversed in place.
            int run = 2;
            if (k[1] < k[0])
            {
                while (run < n && k[run] < k[run - 1]) run++;
                Array.Reverse(k, 0, run);
                Array.Reverse(idx, 0, run);
            }
            else
                while (run < n && !(k[run] < k[run - 1])) run++;
            // binarysort of the rest into the run.
            for (int start = run; start < n; start++)
            {
                double pivot = k[start];
                int pivotIdx = idx[start], l = 0, r = start;
                do
                {
                    int p = l + ((r - l) >> 1);
                    if (pivot < k[p]) r = p; else l = p + 1;
                } while (l < r);
                Array.Copy(k, l, k, l + 1, start - l);
                Array.Copy(idx, l, idx, l + 1, start - l);
                k[l] = pivot;
                idx[l] = pivotIdx;
            }
        }
        Array.Reverse(idx);
        return idx;
    }
}
