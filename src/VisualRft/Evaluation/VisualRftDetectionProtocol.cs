using System.Text.Json;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Evaluation;

/// <summary>
/// An existence map of the Visual-RFT evaluation (<c>exist_map_{coco|lvis}_Qwen2_vl_{2B|7B}_baseline.json</c>): image id →
/// the category names the <b>baseline</b> model judged present. It decides which (image, category) pairs are queried, for
/// the baseline and every fine-tuned model alike; ground-truth categories are not used (visual-rft-spec.md §6.2).
/// </summary>
public sealed class ExistenceMap(IReadOnlyDictionary<long, IReadOnlyList<string>> categories, string source)
{
    public IReadOnlyDictionary<long, IReadOnlyList<string>> Categories { get; } = categories;
    public string Source { get; } = source;

    public static ExistenceMap Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"existence map not found: {path} (the Visual-RFT repository ships them; `vrft download` lists them)", path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: an existence map is a JSON object image id → list of category names");
        var map = new Dictionary<long, IReadOnlyList<string>>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (!long.TryParse(p.Name, out var id)) throw new InvalidDataException($"{path}: key '{p.Name}' is not an image id");
            if (p.Value.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: key '{p.Name}' must hold a list of category names");
            map[id] = [.. p.Value.EnumerateArray().Select(e => e.GetString() ?? throw new InvalidDataException($"{path}: key '{p.Name}' holds a non-string"))];
        }
        return new ExistenceMap(map, path);
    }
}

/// <summary>One query of the protocol: an image, a category, and the prompt of spec §3.2.</summary>
public sealed record DetectionQuery(CocoImage Image, CocoCategory Category, string Prompt);

/// <summary>The detections one response yields; <paramref name="Error"/> where the original script counts an <c>error_count</c>.</summary>
public sealed record ParsedDetections(IReadOnlyList<CocoDetection> Detections, string? Error);

/// <summary>
/// The Visual-RFT detection evaluation of <c>Qwen2_VL_{coco|lvis}_infere.py</c> (visual-rft-spec.md §6.2–6.3): which
/// pairs are queried, how a response becomes COCO detections, and the reported mAP (mean of per-class AP over the
/// experiment's classes; <see cref="DetectionEvaluation.PaperMeanAp"/>).
/// </summary>
public static class VisualRftDetectionProtocol
{
    /// <summary>
    /// The (image, category) pairs queried: images in the annotation file's order, for each the map's categories in map
    /// order, keeping those in <paramref name="selectedCategories"/>. An image missing from the map is an error, as the
    /// script's <c>exist_cat[str(image_id)]</c> is.
    /// </summary>
    public static IReadOnlyList<DetectionQuery> Queries(CocoDataset groundTruth, ExistenceMap map, IReadOnlyCollection<string> selectedCategories)
    {
        foreach (var name in selectedCategories) groundTruth.CategoryNamed(name);
        var queries = new List<DetectionQuery>();
        foreach (var image in groundTruth.Images)
        {
            if (!map.Categories.TryGetValue(image.Id, out var names))
                throw new KeyNotFoundException($"{map.Source}: no entry for image {image.Id} of {groundTruth.Source}");
            foreach (var name in names)
                if (selectedCategories.Contains(name))
                    queries.Add(new DetectionQuery(image, groundTruth.CategoryNamed(name), Prompts.Detection(name)));
        }
        return queries;
    }

    /// <summary>
    /// The script's post-processing: drop <c>[[</c>/<c>]]</c>, newlines and the literal <c>, ...</c>; take
    /// <c>&lt;answer&gt;(.*?)&lt;/answer&gt;</c> (else the whole text), stripped; <c>extract_bbox</c> (truncation repair,
    /// quotes, Python's json.loads); nothing if that gives None or a list whose first element is a string; duplicates of a
    /// Position removed; each box scaled from the 0–1000 frame to pixels, [x1·W/1000, y1·H/1000, (x2 − x1)·W/1000, …], scored
    /// by its Confidence. Where the script raises (an empty list, a non-dict element, a missing key, a Position that is not
    /// four numbers) the boxes before the failing one are kept and <see cref="ParsedDetections.Error"/> is set. A
    /// Confidence that is not a finite number is an error here too (pycocotools cannot rank it).
    /// </summary>
    public static ParsedDetections Parse(string response, CocoImage image, long categoryId)
    {
        var (_, content) = DetectionParse.Locate(response, DetectionReader.EvaluationScript);
        if (!DetectionParse.TryLoad(content, out var list, out _, out _)) return new([], null);
        if (list.Kind == PyKind.Str) return new([], list.Str.Length == 0 ? "IndexError: string index out of range" : null);
        if (list.Kind != PyKind.List) return new([], $"{list.TypeName} is not a list of boxes");
        if (list.Items.Count == 0) return new([], "IndexError: list index out of range");
        if (list.Items[0].Kind == PyKind.Str) return new([], null);

        // remove_duplicates runs over the whole list first: a failure there leaves no box.
        var positioned = new List<(PyValue Item, PyValue Position)>();
        foreach (var item in list.Items)
        {
            if (item.Kind != PyKind.Dict || !item.TryGet("Position", out var pos)) return new([], "an element is not a dict with 'Position'");
            if (pos.Kind != PyKind.List || pos.Items.Any(v => v.Kind is PyKind.List or PyKind.Dict)) return new([], $"Position {pos} is not a list of scalars");
            positioned.Add((item, pos));
        }
        var detections = new List<CocoDetection>();
        var frames = ImageFrames.Of(image.Width, image.Height);
        foreach (var (item, pos) in DetectionParse.FirstOfEach(positioned, p => (IReadOnlyList<PyValue>)p.Position.Items, PyTupleEquality.Instance))
        {
            if (pos.Items.Count != 4 || pos.Items.Any(v => !v.IsNumber)) return new(detections, $"Position {pos} is not four numbers");
            if (!item.TryGet("Confidence", out var c)) return new(detections, "KeyError: 'Confidence'");
            if (!c.IsNumber || !double.IsFinite(c.Number)) return new(detections, $"Confidence {c} is not a finite number");
            var p = pos.Items.Select(v => v.Number).ToArray();
            var b = frames.Convert(new Box(p[0], p[1], p[2], p[3]), CoordinateFrame.Normalized1000, CoordinateFrame.OriginalPixels);
            detections.Add(new CocoDetection(image.Id, categoryId, [b.X1, b.Y1, b.X2 - b.X1, b.Y2 - b.Y1], c.Number));
        }
        return new(detections, null);
    }
}
