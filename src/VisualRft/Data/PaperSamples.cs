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
    public static VisualSample FromHfRow(HfRow row, VisualTask task, string id, DatasetSplit split = DatasetSplit.Train)
    {
        RgbImage image;
        try
        {
            using var rgba = Image.Load<Rgba32>(row.ImageBytes);
            image = RgbImage.FromImageSharp(rgba);
        }
        catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException)
        {
            throw new InvalidDataException($"{id}: the image bytes{(row.ImagePath is null ? "" : $" of '{row.ImagePath}'")} cannot be decoded: {e.Message}", e);
        }
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
        var pixels = boxes.Select(b => ToPixels(b, image.Width, image.Height)).ToList();
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
        if (!File.Exists(file))
            throw new FileNotFoundException($"image {image.Id} of {dataset.Source} not found at {file}; `vrft download` fetches the data set's images (see `vrft download --list`)", file);
        var picture = ImageLoader.Load(file);
        var pixels = dataset.Annotations.Where(a => a.ImageId == image.Id && a.CategoryId == category.Id && !a.IsCrowd)
            .Select(a => new PixelBox((int)Math.Round(a.Bbox[0]), (int)Math.Round(a.Bbox[1]), (int)Math.Round(a.Bbox[0] + a.Bbox[2]), (int)Math.Round(a.Bbox[1] + a.Bbox[3])))
            .ToList();
        var boxes = pixels.Select(p => p.ToQwen1000(picture.Width, picture.Height)).ToList();
        return new VisualSample($"{Path.GetFileNameWithoutExtension(dataset.Source)}/{image.Id}/{category.Name}", VisualTask.Detection, picture,
            Prompts.Detection(category.Name), Prompts.DetectionSolution(boxes), category.Name, pixels, boxes,
            [.. pixels.Select(p => new SceneObject(category.Name, p))], DatasetSplit.Test, CategoryGroup.Novel,
            new Dictionary<string, string> { ["image_id"] = image.Id.ToString(CultureInfo.InvariantCulture), ["category_id"] = category.Id.ToString(CultureInfo.InvariantCulture) });
    }

    static Qwen1000Box Box1000(Match m, string id)
    {
        int V(int i) => (int)Math.Round(double.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture));
        return new Qwen1000Box(V(1), V(2), V(3), V(4));
    }

    static PixelBox ToPixels(Qwen1000Box b, int w, int h) =>
        new((int)Math.Round(b.X1 / 1000.0 * w), (int)Math.Round(b.Y1 / 1000.0 * h), (int)Math.Round(b.X2 / 1000.0 * w), (int)Math.Round(b.Y2 / 1000.0 * h));
}
