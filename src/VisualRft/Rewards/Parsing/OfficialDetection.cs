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

    /// <summary>Spec §4.3 steps 1–2: answer by the single-line regex (else whole text), wrapped, <c>[[</c>/<c>]]</c> squashed,
    /// every <c>\n</c> deleted.</summary>
    static string StudentText(string completion) =>
        ("<answer>" + Answers.SearchAnswerOrWhole(completion, dotAll: false) + "</answer>")
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
        error = $"json.loads failed ({error}) on: {Excerpt.Of(content)}";
        return null;
    }

    /// <summary>The official reader's view of a completion, as boxes for display.</summary>
    public static DetectionAnswer Parse(string completion)
    {
        string student = StudentText(completion);
        return Describe(student, ExtractBbox(student, out var error), error);
    }

    static DetectionAnswer Describe(string student, PyValue? list, string error)
    {
        string answer = student["<answer>".Length..^"</answer>".Length];
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

    /// <summary>(R_IoU, R_conf) of spec §4.5/§4.6, the failure that made them 0 if any, and the answer as
    /// <see cref="Parse"/> reads it (from the same parse).</summary>
    public static (double Iou, double Confidence, ParseFailure? Failure, DetectionAnswer Answer) Score(string completion, string solution)
    {
        string student = StudentText(completion);
        var pred = ExtractBbox(student, out var predError);
        var (iou, confidence, failure) = Score(pred, predError, ExtractBbox(PyText.Strip(solution), out _));
        return (iou, confidence, failure, Describe(student, pred, predError));
    }

    static (double Iou, double Confidence, ParseFailure? Failure) Score(PyValue? pred, string predError, PyValue? gt)
    {
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

    /// <summary>Python <c>==</c> and <c>hash</c> on the hashable scalars of a position tuple. NaN equals NaN here: json.loads
    /// returns the same NaN object every time and tuple comparison checks identity first, so duplicate NaN positions are
    /// removed too. True == 1 == 1.0 and 0.0 == −0.0, as in Python.</summary>
    sealed class TupleEquality : IEqualityComparer<List<PyValue>>
    {
        public static readonly TupleEquality Instance = new();

        static bool Same(PyValue a, PyValue b) =>
            a.IsNumber && b.IsNumber ? a.Number == b.Number || (double.IsNaN(a.Number) && double.IsNaN(b.Number))
            : a.Kind == PyKind.Str && b.Kind == PyKind.Str ? a.Str == b.Str
            : a.Kind == PyKind.None && b.Kind == PyKind.None;

        public bool Equals(List<PyValue>? x, List<PyValue>? y)
        {
            if (x!.Count != y!.Count) return false;
            for (int i = 0; i < x.Count; i++)
                if (!Same(x[i], y[i])) return false;
            return true;
        }

        public int GetHashCode(List<PyValue> t)
        {
            var h = new HashCode();
            h.Add(t.Count);
            foreach (var v in t)
                h.Add(v.IsNumber ? (v.Number == 0 ? 0 : double.IsNaN(v.Number) ? 1 : v.Number.GetHashCode())
                    : v.Kind == PyKind.Str ? string.GetHashCode(v.Str, StringComparison.Ordinal) : 2);
            return h.ToHashCode();
        }
    }

    /// <summary>Spec §4.3 step 5, <c>remove_duplicates</c>: keeps the first of each exact <c>tuple(Position)</c>. The official
    /// code searches a list of the tuples seen (quadratic); a hash set gives the same answer in linear time, and the
    /// positions are still read in order, so the same box raises the same error first.</summary>
    static List<PyValue> RemoveDuplicates(List<PyValue> boxes)
    {
        var seen = new HashSet<List<PyValue>>(TupleEquality.Instance);
        var unique = new List<PyValue>();
        foreach (var box in boxes)
            if (seen.Add(HashableTuple(Get(box, "Position")))) unique.Add(box);
        return unique;
    }

    /// <summary>Spec §4.4, <c>sort_and_calculate_iou</c>: greedy, confidence-ordered, one-to-one, strict IoU &gt; 0.5.
    /// The official loop re-reads every unmatched ground-truth box for every prediction; here each box is unpacked once,
    /// at its first comparison, which is where the official code would first raise for it. The comparisons themselves
    /// stay O(predictions × ground-truth boxes), as in the original.</summary>
    static List<(double Iou, double Confidence)> SortAndCalculateIou(PyValue? gt, List<PyValue> preds)
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
        var results = new List<(double, double)>();
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
            if (best > 0.5) { results.Add((best, keys[i].Number)); matched[bestJ] = true; }
            else results.Add((0, keys[i].Number));
        }
        return results;
    }

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

/// <summary>
/// CPython's <c>sorted(key=…, reverse=True)</c> on float keys, including its behaviour with NaN keys (every comparison
/// with NaN is false, so the result depends on the algorithm). Without NaN the comparisons are consistent and every
/// stable sort gives Python's order (equal keys keep their input order, also under <c>reverse=True</c>): O(n log n).
/// With NaN: reverse, count_run + binary insertion sort by <c>&lt;</c>, reverse — exactly CPython's timsort for fewer than
/// 64 elements, used here for any length (for 64+ elements with NaN keys CPython's merges may order differently). The
/// insertion runs on a balanced sequence (<see cref="IndexedSequence"/>), O(n log² n), with the same comparisons as
/// the array version.
/// </summary>
static class PySort
{
    public static int[] SortedIndicesDescending(double[] keys)
    {
        if (!keys.Any(double.IsNaN)) return [.. Enumerable.Range(0, keys.Length).OrderByDescending(i => keys[i])];
        int n = keys.Length;
        var idx = Enumerable.Range(0, n).Reverse().ToArray();
        var k = idx.Select(i => keys[i]).ToArray();
        // count_run: the initial ascending or strictly descending run; a descending run is reversed in place.
        int run = 1;
        if (n > 1)
        {
            run = 2;
            if (k[1] < k[0])
            {
                while (run < n && k[run] < k[run - 1]) run++;
                Array.Reverse(k, 0, run);
                Array.Reverse(idx, 0, run);
            }
            else
                while (run < n && !(k[run] < k[run - 1])) run++;
        }
        var sorted = new IndexedSequence(n);
        for (int i = 0; i < run; i++) sorted.Insert(i, k[i], idx[i]);
        // binarysort of the rest into the run.
        for (int start = run; start < n; start++)
        {
            double pivot = k[start];
            int l = 0, r = start;
            do
            {
                int p = l + ((r - l) >> 1);
                if (pivot < sorted.KeyAt(p)) r = p; else l = p + 1;
            } while (l < r);
            sorted.Insert(l, pivot, idx[start]);
        }
        var result = sorted.Items();
        Array.Reverse(result);
        return result;
    }
}

/// <summary>A sequence of (key, item) with O(log n) expected access and insertion by position (an implicit treap with
/// deterministic priorities).</summary>
sealed class IndexedSequence(int capacity)
{
    readonly int[] left = new int[capacity], right = new int[capacity], size = new int[capacity], item = new int[capacity];
    readonly double[] key = new double[capacity];
    readonly uint[] priority = new uint[capacity];
    int root = -1, count;
    uint state = 2463534242;

    int Size(int t) => t < 0 ? 0 : size[t];

    public double KeyAt(int position)
    {
        int t = root;
        while (true)
        {
            int ls = Size(left[t]);
            if (position < ls) t = left[t];
            else if (position == ls) return key[t];
            else { position -= ls + 1; t = right[t]; }
        }
    }

    public void Insert(int position, double k, int value)
    {
        int x = count++;
        (left[x], right[x], size[x], key[x], item[x]) = (-1, -1, 1, k, value);
        state ^= state << 13; state ^= state >> 17; state ^= state << 5;   // xorshift32
        priority[x] = state;
        var (a, b) = Split(root, position);
        root = Merge(Merge(a, x), b);
    }

    (int, int) Split(int t, int position)
    {
        if (t < 0) return (-1, -1);
        if (position <= Size(left[t]))
        {
            var (a, b) = Split(left[t], position);
            left[t] = b;
            Update(t);
            return (a, t);
        }
        var (c, d) = Split(right[t], position - Size(left[t]) - 1);
        right[t] = c;
        Update(t);
        return (t, d);
    }

    int Merge(int a, int b)
    {
        if (a < 0) return b;
        if (b < 0) return a;
        if (priority[a] > priority[b])
        {
            right[a] = Merge(right[a], b);
            Update(a);
            return a;
        }
        left[b] = Merge(a, left[b]);
        Update(b);
        return b;
    }

    void Update(int t) => size[t] = 1 + Size(left[t]) + Size(right[t]);

    /// <summary>The items in sequence order.</summary>
    public int[] Items()
    {
        var result = new int[count];
        var stack = new Stack<int>();
        int t = root, i = 0;
        while (t >= 0 || stack.Count > 0)
        {
            for (; t >= 0; t = left[t]) stack.Push(t);
            t = stack.Pop();
            result[i++] = item[t];
            t = right[t];
        }
        return result;
    }
}
