using System.Text.Json;
using VisualRft.IO;

namespace VisualRft.Data;

/// <summary>
/// One image of a COCO or LVIS annotation file. The LVIS keys are empty for COCO: <c>neg_category_ids</c> (categories
/// verified absent) and <c>not_exhaustive_category_ids</c> (categories present but not all instances annotated).
/// </summary>
public sealed record CocoImage(long Id, string FileName, int Width, int Height, string? CocoUrl,
    IReadOnlySet<long> NegCategoryIds, IReadOnlySet<long> NotExhaustiveCategoryIds);

/// <summary>A category; <paramref name="Frequency"/> is LVIS's r / c / f (rare, common, frequent), null in COCO.</summary>
public sealed record CocoCategory(long Id, string Name, string? Frequency);

/// <summary>
/// One ground-truth object: <paramref name="Bbox"/> is COCO's [x, y, w, h] in pixels; <paramref name="Area"/> the segment's
/// area (what the area ranges test); <paramref name="Ignore"/> LVIS's optional <c>ignore</c> flag.
/// </summary>
public sealed record CocoAnnotation(long Id, long ImageId, long CategoryId, double[] Bbox, double Area, bool IsCrowd, bool Ignore);

/// <summary>One detection of a results file: image, category, [x, y, w, h] in pixels, score.</summary>
public sealed record CocoDetection(long ImageId, long CategoryId, double[] Bbox, double Score);

/// <summary>
/// A COCO-format annotation file (COCO 2017, LVIS v1): images, categories, annotations. Keys pycocotools or the LVIS API
/// require are required here too, except <c>area</c> (default: the box's w·h), <c>iscrowd</c> (default 0) and annotation
/// <c>id</c> (default: position + 1). Errors name the file, the entry and the key.
/// </summary>
public sealed class CocoDataset(IReadOnlyList<CocoImage> images, IReadOnlyList<CocoCategory> categories,
    IReadOnlyList<CocoAnnotation> annotations, string source)
{
    public IReadOnlyList<CocoImage> Images { get; } = images;
    public IReadOnlyList<CocoCategory> Categories { get; } = categories;
    public IReadOnlyList<CocoAnnotation> Annotations { get; } = annotations;
    /// <summary>The file it was read from, for messages.</summary>
    public string Source { get; } = source;

    /// <summary>Largest JSON file read: the JSON reader holds the whole file, and stops at 2 GB (LVIS v1 train is 1.1 GB).</summary>
    public const long MaxJsonBytes = 2_000_000_000;

    public static CocoDataset Load(string path)
    {
        using var stream = OpenJson(path, "annotation file");
        return Parse(stream, path);
    }

    /// <summary>A regular file of at most <see cref="MaxJsonBytes"/>, refused by name before anything is read (a folder,
    /// <c>/dev/zero</c>, a file the reader could not hold).</summary>
    static FileStream OpenJson(string path, string what)
    {
        var stream = BoundedFile.OpenRegular(path, what);
        if (stream.Length <= MaxJsonBytes) return stream;
        stream.Dispose();
        throw new InvalidDataException($"{path}: {stream.Length:N0} bytes, more than the {MaxJsonBytes:N0} bytes the JSON reader can hold");
    }

    public static CocoDataset Parse(Stream json, string source)
    {
        using var doc = Open(json, source);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw Error(source, "", "an annotation file must be a JSON object with images, categories and annotations");
        var images = Array(root, "images", source).Select((e, i) => Image(e, source, $"images[{i}]")).ToList();
        var categories = Array(root, "categories", source).Select((e, i) => new CocoCategory(
            Long(e, "id", source, $"categories[{i}]"), Str(e, "name", source, $"categories[{i}]"),
            e.TryGetProperty("frequency", out var f) ? f.GetString() : null)).ToList();
        var annotations = Array(root, "annotations", source).Select((e, i) => Annotation(e, i, source)).ToList();
        var dataset = new CocoDataset(images, categories, annotations, source);
        dataset.Check();
        return dataset;
    }

    /// <summary>The image with this id.</summary>
    public CocoImage Image(long id) => (imageIndex ??= Images.ToDictionary(i => i.Id)).TryGetValue(id, out var image) ? image
        : throw new KeyNotFoundException($"{Source}: no image with id {id}");

    /// <summary>The category with this id.</summary>
    public CocoCategory Category(long id) => (categoryIndex ??= Categories.ToDictionary(c => c.Id)).TryGetValue(id, out var c) ? c
        : throw new KeyNotFoundException($"{Source}: no category with id {id}");

    /// <summary>The category with this name (COCO names such as "fire hydrant", LVIS names such as "horse_buggy").</summary>
    public CocoCategory CategoryNamed(string name) => Categories.FirstOrDefault(c => c.Name == name)
        ?? throw new KeyNotFoundException($"{Source}: no category named '{name}'");

    Dictionary<long, CocoImage>? imageIndex;
    Dictionary<long, CocoCategory>? categoryIndex;

    void Check()
    {
        var dupImage = Images.GroupBy(i => i.Id).FirstOrDefault(g => g.Count() > 1);
        if (dupImage != null) throw Error(Source, "images", $"image id {dupImage.Key} appears twice");
        var dupCat = Categories.GroupBy(c => c.Id).FirstOrDefault(g => g.Count() > 1);
        if (dupCat != null) throw Error(Source, "categories", $"category id {dupCat.Key} appears twice");
        var images = Images.Select(i => i.Id).ToHashSet();
        var cats = Categories.Select(c => c.Id).ToHashSet();
        for (int i = 0; i < Annotations.Count; i++)
        {
            var a = Annotations[i];
            if (!images.Contains(a.ImageId)) throw Error(Source, $"annotations[{i}].image_id", $"image {a.ImageId} is not in images");
            if (!cats.Contains(a.CategoryId)) throw Error(Source, $"annotations[{i}].category_id", $"category {a.CategoryId} is not in categories");
        }
    }

    /// <summary>A results file: a JSON list of {image_id, category_id, bbox: [x, y, w, h], score}.</summary>
    public static IReadOnlyList<CocoDetection> LoadResults(string path)
    {
        using var stream = OpenJson(path, "results file");
        return ParseResults(stream, path);
    }

    public static IReadOnlyList<CocoDetection> ParseResults(Stream json, string source)
    {
        using var doc = Open(json, source);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw Error(source, "", "a results file must be a JSON list of detections");
        return [.. doc.RootElement.EnumerateArray().Select((e, i) =>
        {
            var at = $"[{i}]";
            var score = Number(e, "score", source, at);
            if (!double.IsFinite(score)) throw Error(source, at + ".score", $"must be a finite number, got {score}");
            return new CocoDetection(Long(e, "image_id", source, at), Long(e, "category_id", source, at), Bbox(e, source, at), score);
        })];
    }

    static JsonDocument Open(Stream json, string source)
    {
        try { return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e); }
    }

    static CocoImage Image(JsonElement e, string source, string at) => new(
        Long(e, "id", source, at),
        e.TryGetProperty("file_name", out var f) ? f.GetString() ?? "" : "",
        e.TryGetProperty("width", out var w) ? w.GetInt32() : 0,
        e.TryGetProperty("height", out var h) ? h.GetInt32() : 0,
        e.TryGetProperty("coco_url", out var u) ? u.GetString() : null,
        IdSet(e, "neg_category_ids", source, at),
        IdSet(e, "not_exhaustive_category_ids", source, at));

    static CocoAnnotation Annotation(JsonElement e, int i, string source)
    {
        var at = $"annotations[{i}]";
        var bbox = Bbox(e, source, at);
        return new CocoAnnotation(
            e.TryGetProperty("id", out _) ? Long(e, "id", source, at) : i + 1,
            Long(e, "image_id", source, at), Long(e, "category_id", source, at), bbox,
            e.TryGetProperty("area", out _) ? Number(e, "area", source, at) : bbox[2] * bbox[3],
            e.TryGetProperty("iscrowd", out var c) && Flag(c, source, at + ".iscrowd"),
            e.TryGetProperty("ignore", out var g) && Flag(g, source, at + ".ignore"));
    }

    static bool Flag(JsonElement v, string source, string key) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number => v.GetDouble() != 0,
        _ => throw Error(source, key, $"must be 0/1 or a boolean, got {v.GetRawText()}"),
    };

    static double[] Bbox(JsonElement e, string source, string at)
    {
        if (!e.TryGetProperty("bbox", out var b) || b.ValueKind != JsonValueKind.Array || b.GetArrayLength() != 4)
            throw Error(source, at + ".bbox", "must be [x, y, w, h]");
        var v = b.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number ? x.GetDouble()
            : throw Error(source, at + ".bbox", $"entries must be numbers, got {x.GetRawText()}")).ToArray();
        if (v.Any(x => !double.IsFinite(x))) throw Error(source, at + ".bbox", "entries must be finite");
        return v;
    }

    static IReadOnlySet<long> IdSet(JsonElement e, string key, string source, string at)
    {
        if (!e.TryGetProperty(key, out var v)) return new HashSet<long>();
        if (v.ValueKind != JsonValueKind.Array) throw Error(source, $"{at}.{key}", "must be a list of category ids");
        return v.EnumerateArray().Select(x => x.TryGetInt64(out var id) ? id : throw Error(source, $"{at}.{key}", $"entries must be integers, got {x.GetRawText()}")).ToHashSet();
    }

    static IEnumerable<JsonElement> Array(JsonElement root, string key, string source) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : throw Error(source, key, "must be a list");

    static long Long(JsonElement e, string key, string source, string at) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.TryGetInt64(out var x) ? x
            : throw Error(source, $"{at}.{key}", "must be an integer");

    static double Number(JsonElement e, string key, string source, string at) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
            : throw Error(source, $"{at}.{key}", "must be a number");

    static string Str(JsonElement e, string key, string source, string at) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw Error(source, $"{at}.{key}", "must be a string");

    static InvalidDataException Error(string source, string key, string message) =>
        new(key.Length == 0 ? $"{source}: {message}" : $"{source}: key '{key}' {message}");
}
