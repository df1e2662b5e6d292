using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VisualRft.IO;

/// <summary>
/// Typed reads from one JSON object of an input file (config.json, tokenizer.json, tokenizer_config.json, data
/// manifests), each error one line naming the file, the key path and what was expected against what was found:
/// <c>config.json: key 'vision_config.depth' must be an integer, got "x"</c>. JsonNode's own errors say only "cannot be
/// converted" and name neither.
/// </summary>
/// <remarks>
/// One rule for every format: an optional key set to <c>null</c> is absent (Hugging Face writes unset options as null)
/// and gives its default, a required one is refused; an integer is a number without a fraction (<c>4</c> or <c>4.0</c>:
/// some exporters write floats) within the range of <see cref="int"/>.
/// </remarks>
public sealed class JsonFields
{
    readonly JsonObject obj;

    /// <summary>The file (or "embedded:…") the object came from, which starts every message.</summary>
    public string Source { get; }

    /// <summary>Key path of this object inside the file ("" for the top level, "vision_config", "added_tokens[3]").</summary>
    public string Path { get; }

    JsonFields(JsonObject obj, string source, string path) => (this.obj, Source, Path) = (obj, source, path);

    /// <summary>The top-level object of <paramref name="path"/>, a regular file of at most <paramref name="maxBytes"/>
    /// bytes (checked before it is read); <paramref name="what"/> names it in errors ("config file").</summary>
    public static JsonFields Load(string path, int maxBytes, string what, bool comments = false) =>
        Parse(BoundedFile.ReadAllText(path, maxBytes, what), path, comments);

    /// <summary>
    /// The top-level object of <paramref name="json"/>; <paramref name="source"/> names it in errors. A key given twice in
    /// one object is refused with its path: System.Text.Json would keep the last (JsonDocument) or throw a bare
    /// ArgumentException later (JsonObject), and Python's json keeps the last, so a file meant for both could read two ways.
    /// </summary>
    public static JsonFields Parse(string json, string source, bool comments = false)
    {
        var options = new JsonDocumentOptions
        {
            CommentHandling = comments ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
            AllowDuplicateProperties = false,
        };
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, options); }
        catch (JsonException e)
        {
            // System.Text.Json names a duplicate key but not the object it is in ("hidden_size" is both a text and a
            // vision key): find its path, a second parse paid only on this error.
            var duplicate = DuplicatePath(json, options with { AllowDuplicateProperties = true });
            throw duplicate != null ? Error(source, duplicate, "is given twice") : new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: the top level is not a JSON object");
            // Clone: the node reads its members lazily from an element that must outlive the pooled document.
            return new JsonFields(JsonObject.Create(doc.RootElement.Clone())!, source, "");
        }
    }

    /// <summary>An object built in code or parsed elsewhere, read with the same messages.</summary>
    public static JsonFields Of(JsonObject obj, string source) => new(obj, source, "");

    /// <summary>The key path of the first key given twice in one object, or null (also when the text is not JSON).</summary>
    static string? DuplicatePath(string json, JsonDocumentOptions options)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, options);
            return Find(doc.RootElement, "");
        }
        catch (JsonException) { return null; }

        static string? Find(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    var key = Join(path, p.Name);
                    if (!seen.Add(p.Name)) return key;
                    if (Find(p.Value, key) is { } found) return found;
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    if (Find(item, $"{path}[{i++}]") is { } found) return found;
            }
            return null;
        }
    }

    // ---------------------------------------------------------------- keys

    /// <summary>The keys present, in file order (null-valued ones included).</summary>
    public IEnumerable<string> Keys => obj.Select(kv => kv.Key);

    /// <summary>True when <paramref name="key"/> is present with a value other than null.</summary>
    public bool Has(string key) => obj[key] is not null;

    /// <summary>The full key path of <paramref name="key"/> in this object, as messages name it.</summary>
    string PathOf(string key) => Join(Path, key);

    /// <summary>Refuses keys other than <paramref name="known"/> (a typo would otherwise be a silent default).</summary>
    public void OnlyKeys(params string[] known)
    {
        foreach (var key in Keys)
            if (!known.Contains(key)) throw Error(key, $"unknown key (known: {string.Join(", ", known)})");
    }

    // ---------------------------------------------------------------- values

    /// <summary>A string; with <paramref name="nonEmpty"/>, "" is refused too.</summary>
    public string Str(string key, bool nonEmpty = false) => AsStr(Required(key), PathOf(key), nonEmpty);

    /// <summary>A string, or <paramref name="orElse"/> when the key is absent or null.</summary>
    public string? Str(string key, string? orElse, bool nonEmpty = false) => obj[key] is { } n ? AsStr(n, PathOf(key), nonEmpty) : orElse;

    public int Int(string key) => AsInt(Required(key), PathOf(key));

    public int Int(string key, int orElse) => obj[key] is { } n ? AsInt(n, PathOf(key)) : orElse;

    public double Double(string key) => AsDouble(Required(key), PathOf(key));

    public double Double(string key, double orElse) => obj[key] is { } n ? AsDouble(n, PathOf(key)) : orElse;

    /// <summary>true or false; every flag the formats read has a default.</summary>
    public bool Bool(string key, bool orElse) => obj[key] is { } n ? AsBool(n, PathOf(key)) : orElse;

    /// <summary>A string that must be one of <paramref name="values"/>' keys, mapped to its value.</summary>
    public T OneOf<T>(string key, IReadOnlyDictionary<string, T> values)
    {
        var s = Str(key);
        return values.TryGetValue(s, out var v) ? v : throw Error(key, $"unknown value '{Excerpt.Of(s, 80)}' (known: {string.Join(", ", values.Keys)})");
    }

    /// <summary>An array of integers, of at most <paramref name="maxCount"/> entries; an entry's error names its index.</summary>
    public int[] Ints(string key, int maxCount = int.MaxValue) => [.. Items(Array(key, "an array of integers", maxCount), key, AsInt)];

    public double[] Doubles(string key, int maxCount = int.MaxValue) => [.. Items(Array(key, "an array of numbers", maxCount), key, AsDouble)];

    public string[] Strs(string key, bool nonEmpty = false, int maxCount = int.MaxValue) =>
        [.. Items(Array(key, "an array of strings", maxCount), key, (n, p) => AsStr(n, p, nonEmpty))];

    /// <summary>A nested object, read with its key path as prefix.</summary>
    public JsonFields Obj(string key) => AsObj(Required(key), PathOf(key));

    /// <summary>A nested object, or null when the key is absent or null.</summary>
    public JsonFields? ObjOrNull(string key) => obj[key] is { } n ? AsObj(n, PathOf(key)) : null;

    /// <summary>An array of objects (none when the key is absent or null), each read as <c>key[i]</c>.</summary>
    public IReadOnlyList<JsonFields> Objs(string key) =>
        obj[key] is null ? [] : [.. Items(Array(key, "an array of objects", int.MaxValue), key, AsObj)];

    /// <summary>The entries of an array whose entries take several shapes (none when the key is absent or null), for the
    /// caller to read; <see cref="Error(string, string)"/> with <c>key[i]</c> names one.</summary>
    public IReadOnlyList<JsonNode?> Entries(string key) => obj[key] is null ? [] : [.. Array(key, "an array", int.MaxValue)];

    /// <summary>The kind of value at <paramref name="key"/>: <see cref="JsonValueKind.Undefined"/> when absent.</summary>
    public JsonValueKind Kind(string key) =>
        !obj.TryGetPropertyValue(key, out var n) ? JsonValueKind.Undefined : n?.GetValueKind() ?? JsonValueKind.Null;

    /// <summary>This object and every object nested in it at any depth (through objects and arrays), this one first.</summary>
    public IEnumerable<JsonFields> SelfAndDescendants()
    {
        yield return this;
        foreach (var (key, value) in obj)
        {
            IEnumerable<JsonFields> children = value switch
            {
                JsonObject o => [AsObj(o, PathOf(key))],
                JsonArray a => a.Select((e, i) => (e, i)).Where(x => x.e is JsonObject).Select(x => AsObj(x.e!, $"{PathOf(key)}[{x.i}]")),
                _ => [],
            };
            foreach (var c in children)
                foreach (var d in c.SelfAndDescendants()) yield return d;
        }
    }

    /// <summary>The object's JSON text, for quoting (through <see cref="Excerpt"/>) in a message.</summary>
    public override string ToString() => obj.ToJsonString(Quoting);

    // ---------------------------------------------------------------- errors

    /// <summary>"{source}: key '{key path}' {message}", or "{source}: {message}" for an empty key path: the one shape of
    /// every error about an input file's key, also for the checks a format makes after reading. The path is shortened:
    /// keys come from the file, and a vocabulary's keys are its tokens.</summary>
    public static InvalidDataException Error(string source, string keyPath, string message) =>
        new(keyPath.Length == 0 ? $"{source}: {message}" : $"{source}: key '{Excerpt.Of(keyPath, 120)}' {message}");

    /// <summary>An error about <paramref name="key"/> of this object (a path below it, "merges[3]", works too).</summary>
    public InvalidDataException Error(string key, string message) => Error(Source, PathOf(key), message);

    /// <summary>"must be {expected}, got {the value found}".</summary>
    public InvalidDataException Wrong(string key, string expected) => Wrong(Source, PathOf(key), expected, obj[key]);

    InvalidDataException Missing(string key) => Error(key, "is missing");

    // ---------------------------------------------------------------- conversions

    static readonly JsonSerializerOptions Quoting = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>A value as a message quotes it: its JSON, shortened.</summary>
    static string Quote(JsonNode? n) => Excerpt.Of(n?.ToJsonString(Quoting) ?? "null", 60);

    static InvalidDataException Wrong(string source, string keyPath, string expected, JsonNode? found) =>
        Error(source, keyPath, $"must be {expected}, got {Quote(found)}");

    JsonNode Required(string key) =>
        obj.TryGetPropertyValue(key, out var n) ? n ?? throw Error(key, "is null, where a value is needed") : throw Missing(key);

    JsonArray Array(string key, string expected, int maxCount)
    {
        var a = Required(key) as JsonArray ?? throw Wrong(key, expected);
        return a.Count <= maxCount ? a : throw Error(key, $"has {a.Count:N0} entries, more than {maxCount:N0}");
    }

    IEnumerable<T> Items<T>(JsonArray a, string key, Func<JsonNode?, string, T> read) => a.Select((e, i) => read(e, $"{PathOf(key)}[{i}]"));

    string AsStr(JsonNode? n, string path, bool nonEmpty) =>
        n is JsonValue v && v.TryGetValue(out string? s) && (s.Length > 0 || !nonEmpty) ? s
            : throw Wrong(Source, path, nonEmpty ? "a non-empty string" : "a string", n);

    int AsInt(JsonNode? n, string path)
    {
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) throw Wrong(Source, path, "an integer", n);
        if (v.TryGetValue(out int i)) return i;
        if (!TryNumber(v, out var d) || d != Math.Floor(d)) throw Wrong(Source, path, "an integer", n);
        return d >= int.MinValue && d <= int.MaxValue ? (int)d : throw Wrong(Source, path, $"an integer between {int.MinValue:N0} and {int.MaxValue:N0}", n);
    }

    double AsDouble(JsonNode? n, string path) =>
        n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && TryNumber(v, out var d) ? d : throw Wrong(Source, path, "a number", n);

    /// <summary>A finite double from a parsed number or one set in code as any numeric type (a long set in code does not
    /// convert through TryGetValue&lt;double&gt;, so its JSON text is read).</summary>
    static bool TryNumber(JsonValue v, out double d) =>
        (v.TryGetValue(out d) || double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out d)) && double.IsFinite(d);

    bool AsBool(JsonNode? n, string path) =>
        n is JsonValue v && v.TryGetValue(out bool b) ? b : throw Wrong(Source, path, "true or false", n);

    JsonFields AsObj(JsonNode? n, string path) => n is JsonObject o ? new JsonFields(o, Source, path) : throw Wrong(Source, path, "an object", n);
}
