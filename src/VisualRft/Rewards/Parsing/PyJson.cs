using System.Globalization;
using System.Text;
using VisualRft.IO;

namespace VisualRft.Rewards.Parsing;

/// <summary>The Python value kinds that <c>json.loads</c> produces.</summary>
enum PyKind { None, Bool, Int, Float, Str, List, Dict }

/// <summary>
/// A value as Python's <c>json.loads</c> returns it. Numbers are held as doubles; <c>bool</c> is a number in Python
/// arithmetic and comparisons (True == 1), which <see cref="IsNumber"/> reflects. Integers beyond 2^53 lose precision
/// (Python keeps them exact); this only matters for coordinates above ~9·10^15.
/// </summary>
sealed class PyValue
{
    public PyKind Kind { get; private init; }
    public double Number { get; private init; }
    public string Str { get; private init; } = "";
    public List<PyValue> Items { get; private init; } = [];
    /// <summary>Dict entries in insertion order; a repeated key keeps its first position and its last value, as in Python.</summary>
    public List<KeyValuePair<string, PyValue>> Entries { get; private init; } = [];
    /// <summary>Key → position in <see cref="Entries"/>, kept only for dicts too large to search (see <see cref="PyJson"/>).</summary>
    Dictionary<string, int>? index;

    public static readonly PyValue Null = new() { Kind = PyKind.None };
    public static PyValue Bool(bool b) => new() { Kind = PyKind.Bool, Number = b ? 1 : 0 };
    public static PyValue Int(double v) => new() { Kind = PyKind.Int, Number = v };
    public static PyValue Float(double v) => new() { Kind = PyKind.Float, Number = v };
    public static PyValue String(string s) => new() { Kind = PyKind.Str, Str = s };
    public static PyValue List(List<PyValue> items) => new() { Kind = PyKind.List, Items = items };
    public static PyValue Dict(List<KeyValuePair<string, PyValue>> entries, Dictionary<string, int>? index = null) =>
        new() { Kind = PyKind.Dict, Entries = entries, index = index };

    public bool IsNumber => Kind is PyKind.Bool or PyKind.Int or PyKind.Float;

    public bool TryGet(string key, out PyValue value)
    {
        if (index is not null)
        {
            bool found = index.TryGetValue(key, out var at);
            value = found ? Entries[at].Value : Null;
            return found;
        }
        foreach (var (k, v) in Entries)
            if (k == key) { value = v; return true; }
        value = Null;
        return false;
    }

    /// <summary>Python type name, for error messages that read like the original traceback.</summary>
    public string TypeName => Kind switch
    {
        PyKind.None => "NoneType", PyKind.Bool => "bool", PyKind.Int => "int", PyKind.Float => "float",
        PyKind.Str => "str", PyKind.List => "list", _ => "dict",
    };

    /// <summary>The value as Python prints it, cut to <see cref="Excerpt.DefaultLength"/> characters.</summary>
    public override string ToString() => Preview(Excerpt.DefaultLength);

    /// <summary>The value as Python prints it, cut to <paramref name="max"/> characters; the cost is bounded by
    /// <paramref name="max"/>, not by the size of the value (messages quote hostile answers).</summary>
    public string Preview(int max)
    {
        var sb = new StringBuilder();
        Append(sb, max + 1);
        return Excerpt.Of(sb.ToString(), max);
    }

    void Append(StringBuilder sb, int limit)
    {
        switch (Kind)
        {
            case PyKind.None: sb.Append("None"); break;
            case PyKind.Bool: sb.Append(Number != 0 ? "True" : "False"); break;
            case PyKind.Int or PyKind.Float: sb.Append(Number.ToString("R", CultureInfo.InvariantCulture)); break;
            case PyKind.Str: sb.Append('\'').Append(Str.AsSpan(0, Math.Min(Str.Length, Math.Max(0, limit - sb.Length)))).Append('\''); break;
            case PyKind.List:
                sb.Append('[');
                for (int i = 0; i < Items.Count && sb.Length < limit; i++)
                {
                    if (i > 0) sb.Append(", ");
                    Items[i].Append(sb, limit);
                }
                sb.Append(']');
                break;
            default:
                sb.Append('{');
                for (int i = 0; i < Entries.Count && sb.Length < limit; i++)
                {
                    if (i > 0) sb.Append(", ");
                    sb.Append('\'').Append(Entries[i].Key.AsSpan(0, Math.Min(Entries[i].Key.Length, Math.Max(0, limit - sb.Length)))).Append("': ");
                    Entries[i].Value.Append(sb, limit);
                }
                sb.Append('}');
                break;
        }
    }
}

/// <summary>
/// A reader with the semantics of CPython's <c>json.loads</c> (C scanner, <c>strict=True</c>): whitespace is
/// space/tab/LF/CR only; <c>NaN</c>, <c>Infinity</c> and <c>-Infinity</c> are accepted (System.Text.Json refuses them,
/// and the official detection reward depends on accepting them, spec §4.7); control characters inside strings,
/// trailing commas, leading zeros, <c>1.</c> and single quotes are errors; ints and floats are told apart; duplicate
/// keys keep the last value. Nesting deeper than <see cref="MaxDepth"/> fails, as Python's recursion limit does
/// (near 1000 frames). Linear in the input: a dict with many keys indexes them, so repeated or distinct keys cost O(1)
/// each. Never throws.
/// </summary>
static class PyJson
{
    public const int MaxDepth = 990;
    const int SmallDict = 8;

    public static bool TryLoads(string s, out PyValue value, out string error)
    {
        var r = new Reader(s);
        try
        {
            r.SkipWs();
            value = r.Value(0);
            r.SkipWs();
            if (r.Pos != s.Length) throw r.Fail("Extra data");
            error = "";
            return true;
        }
        catch (JsonError e)
        {
            value = PyValue.Null;
            error = e.Message;
            return false;
        }
    }

    sealed class JsonError(string message) : Exception(message);

    sealed class Reader(string s)
    {
        public int Pos;

        public JsonError Fail(string what) => new($"{what}: line 1 column {Pos + 1} (char {Pos})");

        public void SkipWs()
        {
            while (Pos < s.Length && s[Pos] is ' ' or '\t' or '\n' or '\r') Pos++;
        }

        bool At(string lit) => Pos + lit.Length <= s.Length && string.CompareOrdinal(s, Pos, lit, 0, lit.Length) == 0;

        public PyValue Value(int depth)
        {
            if (Pos >= s.Length) throw Fail("Expecting value");
            char c = s[Pos];
            switch (c)
            {
                case '"': Pos++; return PyValue.String(StringBody());
                case '{': return Object(depth + 1);
                case '[': return Array(depth + 1);
                case 'n' when At("null"): Pos += 4; return PyValue.Null;
                case 't' when At("true"): Pos += 4; return PyValue.Bool(true);
                case 'f' when At("false"): Pos += 5; return PyValue.Bool(false);
                case 'N' when At("NaN"): Pos += 3; return PyValue.Float(double.NaN);
                case 'I' when At("Infinity"): Pos += 8; return PyValue.Float(double.PositiveInfinity);
                case '-' when At("-Infinity"): Pos += 9; return PyValue.Float(double.NegativeInfinity);
            }
            return Number();
        }

        PyValue Number()
        {
            int start = Pos, i = Pos;
            if (i < s.Length && s[i] == '-') i++;
            if (i < s.Length && s[i] is >= '1' and <= '9') { while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
            else if (i < s.Length && s[i] == '0') i++;
            else throw Fail("Expecting value");
            bool isFloat = false;
            if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
            {
                isFloat = true;
                i += 2;
                while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
            }
            if (i < s.Length && s[i] is 'e' or 'E')
            {
                // CPython backtracks to before the 'e' when no exponent digits follow ("1e" reads as the int 1).
                int e = i + 1;
                if (e < s.Length && s[e] is '+' or '-') e++;
                int digits = e;
                while (e < s.Length && char.IsAsciiDigit(s[e])) e++;
                if (e > digits) { isFloat = true; i = e; }
            }
            Pos = i;
            double v = double.Parse(s.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
            return isFloat ? PyValue.Float(v) : PyValue.Int(v + 0.0); // + 0.0: Python's int -0 is plain 0
        }

        // Keys repeat in every box ('Position', 'Confidence'): one string per distinct key, looked up without allocating.
        readonly Dictionary<string, string> keys = new(StringComparer.Ordinal);

        /// <summary>The body of a string after its opening quote. Strings without escapes (nearly all) are cut out of the
        /// input in one piece; keys are shared.</summary>
        string StringBody(bool key = false)
        {
            int end = Pos;
            while (end < s.Length && s[end] is not ('"' or '\\') && s[end] >= 0x20) end++;
            if (end < s.Length && s[end] == '"')
            {
                var span = s.AsSpan(Pos, end - Pos);
                Pos = end + 1;
                if (!key) return span.ToString();
                var lookup = keys.GetAlternateLookup<ReadOnlySpan<char>>();
                if (!lookup.TryGetValue(span, out var shared)) lookup[span] = shared = span.ToString();
                return shared;
            }
            var sb = new StringBuilder().Append(s.AsSpan(Pos, end - Pos));
            Pos = end;
            while (true)
            {
                if (Pos >= s.Length) throw Fail("Unterminated string starting at");
                char c = s[Pos++];
                if (c == '"') return sb.ToString();
                if (c < 0x20) { Pos--; throw Fail("Invalid control character at"); }
                if (c != '\\') { sb.Append(c); continue; }
                if (Pos >= s.Length) throw Fail("Unterminated string starting at");
                char e = s[Pos++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (Pos + 4 > s.Length || !IsHex4(s.AsSpan(Pos, 4))) throw Fail("Invalid \\uXXXX escape");
                        var u = ushort.Parse(s.AsSpan(Pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                        sb.Append((char)u);
                        Pos += 4;
                        break;
                    default: Pos -= 2; throw Fail("Invalid \\escape");
                }
            }
        }

        static bool IsHex4(ReadOnlySpan<char> h) => char.IsAsciiHexDigit(h[0]) && char.IsAsciiHexDigit(h[1])
            && char.IsAsciiHexDigit(h[2]) && char.IsAsciiHexDigit(h[3]);

        PyValue Array(int depth)
        {
            if (depth > MaxDepth) throw Fail("maximum recursion depth exceeded while decoding a JSON array");
            Pos++;
            var items = new List<PyValue>();
            SkipWs();
            if (Pos < s.Length && s[Pos] == ']') { Pos++; return PyValue.List(items); }
            while (true)
            {
                items.Add(Value(depth));
                SkipWs();
                if (Pos < s.Length && s[Pos] == ']') { Pos++; return PyValue.List(items); }
                if (Pos >= s.Length || s[Pos] != ',') throw Fail("Expecting ',' delimiter");
                Pos++;
                SkipWs();
            }
        }

        PyValue Object(int depth)
        {
            if (depth > MaxDepth) throw Fail("maximum recursion depth exceeded while decoding a JSON object");
            Pos++;
            var entries = new List<KeyValuePair<string, PyValue>>();
            Dictionary<string, int>? index = null;   // built past a few keys, where a linear search would make the dict quadratic
            SkipWs();
            if (Pos < s.Length && s[Pos] == '}') { Pos++; return PyValue.Dict(entries); }
            while (true)
            {
                if (Pos >= s.Length || s[Pos] != '"') throw Fail("Expecting property name enclosed in double quotes");
                Pos++;
                string key = StringBody(key: true);
                SkipWs();
                if (Pos >= s.Length || s[Pos] != ':') throw Fail("Expecting ':' delimiter");
                Pos++;
                SkipWs();
                var v = Value(depth);
                int at = index is not null ? index.GetValueOrDefault(key, -1) : entries.FindIndex(e => e.Key == key);
                if (at >= 0) entries[at] = new(key, v);
                else
                {
                    entries.Add(new(key, v));
                    if (index is not null) index[key] = entries.Count - 1;
                    else if (entries.Count > SmallDict)
                    {
                        index = new Dictionary<string, int>(StringComparer.Ordinal);
                        for (int i = 0; i < entries.Count; i++) index[entries[i].Key] = i;
                    }
                }
                SkipWs();
                if (Pos < s.Length && s[Pos] == '}') { Pos++; return PyValue.Dict(entries, index); }
                if (Pos >= s.Length || s[Pos] != ',') throw Fail("Expecting ',' delimiter");
                Pos++;
                SkipWs();
            }
        }
    }
}
