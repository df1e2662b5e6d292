using System.Globalization;
using System.Text.RegularExpressions;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using VisualRft.Imaging;

namespace VisualRft.Data;

/// <summary>
/// Turns the paper's data into the package's <see cref="VisualSample"/> records: rows of the ViRFT_* data sets (image
/// bytes + problem + solution, read by <see cref="HfDatasetReader"/>) and (image, category) queries on COCO / LVIS
/// annotation files with their image folders. Images become RGB as the Qwen2-VL processor makes them (the ViRFT rows
/// store RGBA, spec §5.1: transparent pixels composited on white, <see cref="RgbImage.FromImageSharp(Image{Rgba32})"/>). Boxes in pixels are the 0–1000 boxes scaled to the image (rounded), or the
/// annotation's boxes for COCO / LVIS.
/// </summary>
public static partial class PaperSamples
{
    [GeneratedRegex(@"'Position':\s*\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]")]
    private static partial Regex PositionPattern();

    [GeneratedRegex(@"category '([^']+)'")]
    private static partial Regex CategoryPattern();

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerPattern();

    [GeneratedRegex(@"\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")]
    private static partial Regex CornerPattern();

    /// <summary>
    /// One ViRFT row as a sample. Detection: the category is read from the problem (<c>category 'X'</c>), every
    /// <c>'Position'</c> of the solution is a ground-truth box. Classification: the class is the solution's answer.
    /// Grounding (LISA): the first <c>(x1,y1),(x2,y2)</c> of the solution.
    /// </summary>
    /// <remarks>The image is decoded with <see cref="ImageLoader"/>'s limits and checks (a truncated or inconsistent image
    /// is a <see cref="BadImageException"/> naming the row and its file).</remarks>
    public static VisualSample FromHfRow(HfRow row, VisualTask task, string id, DatasetSplit split = DatasetSplit.Train)
    {
        RgbImage image;
        var file = row.ImagePath ?? "(image bytes)";
        try { image = ImageLoader.Load(row.ImageBytes, $"{id}: image {file}"); }
        catch (InvalidDataException e) { throw new BadImageException(id, file, e.Message, e); }
        string category;
        List<Qwen1000Box> boxes;
        switch (task)
        {
            case VisualTask.Detection:
                var c = CategoryPattern().Match(row.Problem);
                category = c.Success ? c.Groups[1].Value : throw new InvalidDataException($"{id}: the detection problem names no category ('category \\'…\\'')");
                boxes = [.. PositionPattern().Matches(row.Solution).Select(m => Box1000(m, id))];
                break;
            case VisualTask.Classification:
                var a = AnswerPattern().Match(row.Solution);
                category = a.Success ? a.Groups[1].Value.Trim() : throw new InvalidDataException($"{id}: the solution has no <answer>…</answer>");
                boxes = [];
                break;
            default:
                var g = CornerPattern().Match(row.Solution);
                boxes = g.Success ? [Box1000(g, id)] : throw new InvalidDataException($"{id}: the grounding solution has no (x1,y1),(x2,y2)");
                category = "";
                break;
        }
        var pixels = boxes.Select(b => PixelBox.From1000(b, image.Width, image.Height)).ToList();
        return new VisualSample(id, task, image, row.Problem, row.Solution, category, pixels, boxes,
            [.. pixels.Select(p => new SceneObject(category, p))], split, CategoryGroup.Novel,
            row.ImagePath is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["image_path"] = row.ImagePath });
    }

    /// <summary>
    /// The file of an annotation-file image under <paramref name="imageRoot"/>: COCO's <c>file_name</c>, or for LVIS (which
    /// has none) the last two parts of <c>coco_url</c> (<c>val2017/000000397133.jpg</c>), as the LVIS inference script builds it.
    /// </summary>
    public static string ImageFile(CocoImage image, string imageRoot)
    {
        string relative = image.FileName.Length > 0 ? image.FileName
            : image.CocoUrl is { } url ? string.Join('/', url.Split('/')[^2..])
            : throw new InvalidDataException($"image {image.Id} has neither 'file_name' nor 'coco_url'");
        return Path.Combine(imageRoot, relative);
    }

    /// <summary>
    /// A detection query on a COCO / LVIS image: the prompt of spec §3.2, every ground-truth box of the category (crowd
    /// regions left out) in pixels and in the 0–1000 frame, the solution written as the ViRFT rows write it.
    /// </summary>
    public static VisualSample FromQuery(CocoDataset dataset, CocoImage image, CocoCategory category, string imageRoot)
    {
        var file = ImageFile(image, imageRoot);
        var id = $"{Path.GetFileNameWithoutExtension(dataset.Source)}/{image.Id}/{category.Name}";
        if (!File.Exists(file))
            throw new FileNotFoundException($"image {image.Id} of {dataset.Source} not found at {file}; `vrft download` fetches the data set's images (see `vrft download --list`)", file);
        RgbImage picture;
        try { picture = ImageLoader.Load(file); }
        catch (InvalidDataException e) { throw new BadImageException(id, file, $"{id}: {e.Message}", e); }
        var pixels = dataset.Annotations.Where(a => a.ImageId == image.Id && a.CategoryId == category.Id && !a.IsCrowd)
            .Select(a => new PixelBox((int)Math.Round(a.Bbox[0]), (int)Math.Round(a.Bbox[1]), (int)Math.Round(a.Bbox[0] + a.Bbox[2]), (int)Math.Round(a.Bbox[1] + a.Bbox[3])))
            .ToList();
        var boxes = pixels.Select(p => p.ToQwen1000(picture.Width, picture.Height)).ToList();
        return new VisualSample(id, VisualTask.Detection, picture,
            Prompts.Detection(category.Name), Prompts.DetectionSolution(boxes), category.Name, pixels, boxes,
            [.. pixels.Select(p => new SceneObject(category.Name, p))], DatasetSplit.Test, CategoryGroup.Novel,
            new Dictionary<string, string> { ["image_id"] = image.Id.ToString(CultureInfo.InvariantCulture), ["category_id"] = category.Id.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>
    /// The samples of ViRFT rows, named <c>{name}/{row}</c>. A row whose image is refused (corrupt, truncated, over the
    /// limits) stops the load with an error naming the row and file (<see cref="BadImagePolicy.Fail"/>, the default), or is
    /// left out and listed in <see cref="LoadedSamples.Skipped"/> (<see cref="BadImagePolicy.Skip"/>). Any other problem
    /// of a row (no category, no answer) stops the load either way: it is not the image's fault.
    /// </summary>
    public static LoadedSamples FromHfRows(IEnumerable<HfRow> rows, VisualTask task, string name,
        BadImagePolicy onBadImage = BadImagePolicy.Fail, DatasetSplit split = DatasetSplit.Train)
    {
        var loaded = new Loading(onBadImage);
        int i = 0;
        foreach (var row in rows)
        {
            var id = $"{name}/{i++}";
            loaded.Add(id, row.ImagePath ?? "(image bytes)", () => FromHfRow(row, task, id, split));
        }
        return loaded.Result();
    }

    /// <summary>The detection queries on an annotation file's images (<see cref="FromQuery"/>), with
    /// <paramref name="onBadImage"/> as for <see cref="FromHfRows"/>; a missing image file counts as a bad image (a data set
    /// whose download stopped half-way).</summary>
    public static LoadedSamples FromQueries(CocoDataset dataset, IEnumerable<(CocoImage Image, CocoCategory Category)> queries, string imageRoot,
        BadImagePolicy onBadImage = BadImagePolicy.Fail)
    {
        var loaded = new Loading(onBadImage);
        foreach (var (image, category) in queries)
            loaded.Add($"{Path.GetFileNameWithoutExtension(dataset.Source)}/{image.Id}/{category.Name}", ImageFile(image, imageRoot),
                () => FromQuery(dataset, image, category, imageRoot));
        return loaded.Result();
    }

    sealed class Loading(BadImagePolicy onBadImage)
    {
        readonly List<VisualSample> samples = [];
        readonly List<SkippedSample> skipped = [];

        public void Add(string id, string file, Func<VisualSample> load)
        {
            try { samples.Add(load()); }
            catch (Exception e) when (onBadImage == BadImagePolicy.Skip && e is BadImageException or FileNotFoundException)
            {
                skipped.Add(new SkippedSample(id, file, e.Message));
            }
        }

        public LoadedSamples Result() => new(samples, skipped);
    }

    static Qwen1000Box Box1000(Match m, string id)
    {
        int V(int i) => (int)Math.Round(double.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture));
        return new Qwen1000Box(V(1), V(2), V(3), V(4));
    }
}

/// <summary>What a data-set loader does with a sample whose image is refused: stop with the error, or leave the sample
/// out and count it (<c>--on-bad-image fail|skip</c>).</summary>
public enum BadImagePolicy { Fail, Skip }

/// <summary>A sample's image was refused: <see cref="SampleId"/> and <see cref="File"/> say which; the message says why
/// (an input error: <c>vrft</c> exits 2).</summary>
public sealed class BadImageException(string sampleId, string file, string message, Exception inner) : IOException(message, inner)
{
    public string SampleId { get; } = sampleId;
    public string File { get; } = file;
}

/// <summary>A sample left out by <see cref="BadImagePolicy.Skip"/>, and why.</summary>
public sealed record SkippedSample(string Id, string File, string Reason);

/// <summary>What a loader made: the samples, and those it left out for their images.</summary>
public sealed record LoadedSamples(IReadOnlyList<VisualSample> Samples, IReadOnlyList<SkippedSample> Skipped)
{
    /// <summary>One line for a run's summary: the count, and the first skipped sample with its reason.</summary>
    public string Summary() => Skipped.Count == 0
        ? $"{Samples.Count} samples"
        : $"{Samples.Count} samples, {Skipped.Count} skipped for their images (first: {Skipped[0].Reason})";
}
