using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Data;

/// <summary>
/// Fine-grained classification (the analogue of Flowers102 / FGVC-Aircraft, visual-rft-spec.md §5.1, §7.1): one object per
/// image; classes come in families that differ only in a subtle attribute (stripe count, a hole or a dot, orientation,
/// a border), while the colour, size and position vary within every class and so carry no information.
/// No class name is a substring of another after the reward's normalisation (§4.8), so the substring rule cannot confuse them.
/// </summary>
internal static class ClassificationGenerator
{
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "two stripe square", "three stripe square", "four stripe square",
        "solid circle", "hollow circle", "dotted circle",
        "upright triangle", "inverted triangle",
        "bordered diamond", "plain diamond",
    ];

    public static VisualSample Generate(DatasetManifest m, DatasetSplit split, string className, int index)
    {
        var rng = new ShapeRng(ShapeRng.Mix((ulong)m.Seed, ShapeRng.Hash("classification"), ShapeRng.Hash(split.ToString()), ShapeRng.Hash(className), (ulong)index));
        int size = m.ImageSize;
        var canvas = new Canvas(size, size);
        canvas.Background(rng);
        var fill = ShapeVocabulary.Jittered(rng.Pick(ShapeVocabulary.BaseColours), rng);
        var dark = new Rgb24((byte)(fill.R * 45 / 100), (byte)(fill.G * 45 / 100), (byte)(fill.B * 45 / 100));
        var shader = Shader(className, fill, dark);

        var layout = new SceneLayout(size, size);
        var side = layout.Side(rng, 0.45, 0.75);
        layout.TryPlace(rng, side, side, out var nominal);   // always fits: one object on an empty canvas
        var box = canvas.Paint(nominal, shader, rng);

        return new VisualSample(
            Id: $"{m.Name}/{split.ToString().ToLowerInvariant()}/{className}/{index:D4}",
            Task: VisualTask.Classification,
            Image: canvas.ToImage(),
            Problem: Prompts.Classification(),
            Solution: Prompts.ClassificationSolution(className),
            Category: className,
            Boxes: [],
            Boxes1000: [],
            Objects: [new SceneObject(className, box)],
            Split: split,
            Group: m.GroupOf(className),
            Metadata: new Dictionary<string, string> { ["family"] = className[(className.LastIndexOf(' ') + 1)..] });
    }

    static Func<double, double, Rgb24?> Shader(string className, Rgb24 fill, Rgb24 dark) => className switch
    {
        "two stripe square" => Stripes(2, fill, dark),
        "three stripe square" => Stripes(3, fill, dark),
        "four stripe square" => Stripes(4, fill, dark),
        "solid circle" => (u, v) => u * u + v * v <= 1 ? fill : null,
        "hollow circle" => (u, v) => u * u + v * v <= 1 && u * u + v * v >= 0.25 ? fill : null,
        "dotted circle" => (u, v) => u * u + v * v <= 0.09 ? dark : u * u + v * v <= 1 ? fill : null,
        "upright triangle" => (u, v) => Triangle(u, v) ? fill : null,
        "inverted triangle" => (u, v) => Triangle(u, -v) ? fill : null,
        "bordered diamond" => (u, v) => Math.Abs(u) + Math.Abs(v) <= 1 ? (Math.Abs(u) + Math.Abs(v) >= 0.7 ? dark : fill) : null,
        "plain diamond" => (u, v) => Math.Abs(u) + Math.Abs(v) <= 1 ? fill : null,
        _ => throw new ArgumentException($"unknown class '{className}' (known: {string.Join(", ", ClassNames)})", nameof(className)),
    };

    static readonly Func<double, double, bool> Triangle = ShapeVocabulary.Mask("triangle");

    /// <summary>A square cut into 2n+1 equal horizontal bands; the n odd bands are dark stripes.</summary>
    static Func<double, double, Rgb24?> Stripes(int n, Rgb24 fill, Rgb24 dark) => (u, v) =>
    {
        var band = Math.Min(2 * n, (int)((v + 1) / 2 * (2 * n + 1)));
        return band % 2 == 1 ? dark : fill;
    };
}
