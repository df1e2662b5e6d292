using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Imaging;

/// <summary>Qwen2-VL / Qwen2.5-VL image processor, the PIL path of transformers' <c>Qwen2VLImageProcessor</c>
/// (qwen2vl-spec §4): smart_resize to multiples of patch·merge, PIL bicubic resize, rescale 1/255, CLIP normalisation,
/// the frame duplicated to temporal_patch_size, and patches flattened to [N, 3·tp·p·p] in merge-window order.</summary>
public sealed class Qwen2VLImageProcessor
{
    public static readonly float[] ClipMean = { 0.48145466f, 0.4578275f, 0.40821073f };
    public static readonly float[] ClipStd = { 0.26862954f, 0.26130258f, 0.27577711f };

    public int PatchSize { get; init; } = 14;
    public int TemporalPatchSize { get; init; } = 2;
    public int MergeSize { get; init; } = 2;
    /// <summary>Lower bound on the resized area (default 56² = 3136).</summary>
    public long MinPixels { get; init; } = 56 * 56;
    /// <summary>Upper bound on the resized area (default 16384·28² = 12 845 056). Trainers often lower it.</summary>
    public long MaxPixels { get; init; } = 16384L * 28 * 28;
    public float[] ImageMean { get; init; } = ClipMean;
    public float[] ImageStd { get; init; } = ClipStd;
    /// <summary>Limit on width·height for files decoded by <see cref="Preprocess(string)"/>.</summary>
    public long MaxDecodePixels { get; init; } = ImageLoader.DefaultMaxPixels;

    public int Factor => PatchSize * MergeSize;
    public int PatchDim => 3 * TemporalPatchSize * PatchSize * PatchSize;

    /// <summary>Largest <see cref="MaxPixels"/> (and <see cref="MinPixels"/>) accepted from a file: four times the Qwen2-VL
    /// default, about the 50-megapixel decode limit; the resized image and its patches are allocated from these.</summary>
    public const long PixelLimit = 4 * 16384L * 28 * 28;

    /// <summary>Reads <c>preprocessor_config.json</c>; explicit min_pixels/max_pixels win over the newer
    /// <c>size: {shortest_edge, longest_edge}</c> form (spec §1.3). Every value is checked (types, sizes, finite
    /// mean, a std that does not blow pixels up) with errors naming the key and the file.</summary>
    public static Qwen2VLImageProcessor FromPreprocessorConfig(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(IO.BoundedFile.ReadAllText(path, 1 << 20, "preprocessor config")); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        using var _ = doc;
        var r = doc.RootElement;
        if (r.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: the top level is not a JSON object");
        InvalidDataException Bad(string key, string rule, JsonElement v) =>
            new($"{path}: key '{key}' must be {rule}, got {IO.Excerpt.Of(v.GetRawText(), 40)}");
        long? Long(JsonElement o, string key, string name, long min, long max)
        {
            if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var x) && x >= min && x <= max ? x : throw Bad(name, $"an integer between {min:N0} and {max:N0}", v);
        }
        int Int(string key, int dflt, int max) => (int)(Long(r, key, key, 1, max) ?? dflt);
        float[] Floats(string key, float[] dflt, float min, float max)
        {
            if (!r.TryGetProperty(key, out var v)) return dflt;
            string rule = $"3 numbers between {min} and {max}";
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3) throw Bad(key, rule, v);
            return [.. v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out var f) && float.IsFinite(f) && f >= min && f <= max ? f : throw Bad(key, rule, v))];
        }
        long? sizeMin = null, sizeMax = null;
        if (r.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.Object)
        {
            sizeMin = Long(size, "shortest_edge", "size.shortest_edge", 1, PixelLimit);
            sizeMax = Long(size, "longest_edge", "size.longest_edge", 1, PixelLimit);
        }
        var p = new Qwen2VLImageProcessor
        {
            PatchSize = Int("patch_size", 14, 64),
            TemporalPatchSize = Int("temporal_patch_size", 2, 16),
            MergeSize = Int("merge_size", 2, 16),
            MinPixels = Long(r, "min_pixels", "min_pixels", 1, PixelLimit) ?? sizeMin ?? 56 * 56,
            MaxPixels = Long(r, "max_pixels", "max_pixels", 1, PixelLimit) ?? sizeMax ?? 16384L * 28 * 28,
            ImageMean = Floats("image_mean", ClipMean, -10, 10),
            // Pixels are divided by the std: a tiny one turns them into huge (or infinite) values.
            ImageStd = Floats("image_std", ClipStd, 1e-3f, 1e3f),
        };
        if (p.MaxPixels < p.MinPixels)
            throw new InvalidDataException($"{path}: key 'max_pixels' ({p.MaxPixels:N0}) must not be below min_pixels ({p.MinPixels:N0})");
        if (p.MaxPixels < (long)p.Factor * p.Factor)
            throw new InvalidDataException($"{path}: key 'max_pixels' ({p.MaxPixels:N0}) must hold one merged patch, (patch_size × merge_size)² = {(long)p.Factor * p.Factor:N0}");
        return p;
    }

    /// <summary>Writes the settings as a <c>preprocessor_config.json</c> that <see cref="FromPreprocessorConfig"/> reads back.</summary>
    public void SavePreprocessorConfig(string path)
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["image_processor_type"] = "Qwen2VLImageProcessor",
            ["patch_size"] = PatchSize,
            ["temporal_patch_size"] = TemporalPatchSize,
            ["merge_size"] = MergeSize,
            ["min_pixels"] = MinPixels,
            ["max_pixels"] = MaxPixels,
            ["image_mean"] = ImageMean,
            ["image_std"] = ImageStd,
        }, new JsonSerializerOptions { WriteIndented = true });
        IO.AtomicFile.WriteAllText(path, json);
    }

    /// <summary>transformers' <c>smart_resize</c> (spec §4.1): the nearest multiple of <paramref name="factor"/> per side
    /// (Python <c>round</c>, i.e. half to even), then scaled down or up to respect the pixel bounds.</summary>
    public static (int Height, int Width) SmartResize(int height, int width, int factor = 28, long minPixels = 56 * 56, long maxPixels = 16384L * 28 * 28)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"image size must be positive, got {height}x{width} (HxW)");
        if ((double)Math.Max(height, width) / Math.Min(height, width) > 200)
            throw new ArgumentException($"absolute aspect ratio must be smaller than 200, got {(double)Math.Max(height, width) / Math.Min(height, width)} for {height}x{width} (HxW)");
        long hb = (long)Math.Round((double)height / factor, MidpointRounding.ToEven) * factor;
        long wb = (long)Math.Round((double)width / factor, MidpointRounding.ToEven) * factor;
        if (hb * wb > maxPixels)
        {
            double beta = Math.Sqrt((double)height * width / maxPixels);
            hb = Math.Max(factor, (long)Math.Floor(height / beta / factor) * factor);
            wb = Math.Max(factor, (long)Math.Floor(width / beta / factor) * factor);
        }
        else if (hb * wb < minPixels)
        {
            double beta = Math.Sqrt((double)minPixels / ((double)height * width));
            hb = (long)Math.Ceiling(height * beta / factor) * factor;
            wb = (long)Math.Ceiling(width * beta / factor) * factor;
        }
        return (checked((int)hb), checked((int)wb));
    }

    public ImageFeatures Preprocess(RgbImage image) => Preprocess(new[] { image });

    public ImageFeatures Preprocess(Image<Rgb24> image) => Preprocess(RgbImage.FromImageSharp(image));

    /// <summary>Decodes a file with <see cref="ImageLoader.Load(string, long, double)"/> (size limits) and preprocesses it.</summary>
    public ImageFeatures Preprocess(string path) => Preprocess(ImageLoader.Load(path, MaxDecodePixels));

    /// <summary>All images in order: rows concatenated, one grid per image (spec §4.4).</summary>
    public ImageFeatures Preprocess(IReadOnlyList<RgbImage> images)
    {
        var grids = new List<(int, int, int)>(images.Count);
        var rows = new List<float[]>(images.Count);
        foreach (var img in images)
        {
            var (h, w) = SmartResize(img.Height, img.Width, Factor, MinPixels, MaxPixels);
            var resized = PilBicubic.Resize(img, w, h);
            rows.Add(Patchify(Normalize(resized), h, w, out var grid));
            grids.Add(grid);
        }
        var all = new float[rows.Sum(r => r.Length)];
        int off = 0;
        foreach (var r in rows) { r.CopyTo(all, off); off += r.Length; }
        return new ImageFeatures(all, PatchDim, grids);
    }

    /// <summary>CHW float32: <c>float32(u8 · (1/255))</c>, then <c>(x − mean) / std</c> in float32 (spec §4.3).</summary>
    float[] Normalize(RgbImage img)
    {
        int hw = img.Width * img.Height;
        var chw = new float[3 * hw];
        const double rescale = 1.0 / 255.0;
        for (int i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++)
                chw[c * hw + i] = ((float)(img.Pixels[i * 3 + c] * rescale) - ImageMean[c]) / ImageStd[c];
        return chw;
    }

    /// <summary>Closed form of the reference reshape/permute (spec §4.4): row = ((t·hb + bh)·wb + bw)·m² + mh·m + mw,
    /// column = ((c·tp + f)·p + py)·p + px, every temporal slot holding the same (duplicated) frame.</summary>
    float[] Patchify(float[] chw, int height, int width, out (int T, int H, int W) grid)
    {
        int p = PatchSize, m = MergeSize, tp = TemporalPatchSize;
        int gh = height / p, gw = width / p;
        grid = (1, gh, gw);
        var outp = new float[gh * gw * PatchDim];
        int row = 0;
        for (int bh = 0; bh < gh / m; bh++)
            for (int bw = 0; bw < gw / m; bw++)
                for (int mh = 0; mh < m; mh++)
                    for (int mw = 0; mw < m; mw++, row++)
                    {
                        int col = row * PatchDim, y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
                        for (int c = 0; c < 3; c++)
                            for (int f = 0; f < tp; f++)
                                for (int py = 0; py < p; py++)
                                {
                                    Array.Copy(chw, (c * height + y0 + py) * width + x0, outp, col, p);
                                    col += p;
                                }
                    }
        return outp;
    }
}
