using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Data;

/// <summary>
/// Fine-grained classification (the analogue of Flowers102 / FGVC-Aircraft, visual-rft-spec.md §5.1, §7.1): one object per
/// image; a class is "{attribute} {shape}", and classes come in families that differ only in a subtle attribute (stripe
/// count, a hole or a dot, orientation, a border), while the colour, size and position vary within every class and so carry
/// no information. <see cref="TableClasses"/> are Table 2's few-shot classes; <see cref="PretrainingClasses"/> put the same
/// attributes on other shapes, so that the tiny base model knows every attribute and shape word but none of Table 2's
/// pairs, as Qwen2-VL knows the words of a flower name without telling the species apart.
/// No class name is a substring of another after the reward's normalisation (§4.8), so the substring rule cannot confuse
/// them, and no two names draw the same picture ("solid", "plain" and "upright" never share a shape).
/// </summary>
internal static class ClassificationGenerator
{
    public static IReadOnlyList<string> TableClasses { get; } =
    [
        "two stripe square", "three stripe square", "four stripe square",
        "solid circle", "hollow circle", "dotted circle",
        "upright triangle", "inverted triangle",
        "bordered diamond", "plain diamond",
    ];

    public static IReadOnlyList<string> PretrainingClasses { get; } =
    [
        "two stripe circle", "three stripe circle", "four stripe circle",
        "two stripe diamond", "three stripe diamond", "four stripe diamond",
        "solid square", "hollow square", "dotted square",
        "upright star", "inverted star",
        "bordered cross", "plain cross",
    ];

    public static IReadOnlyList<string> ClassNames { get; } = [.. TableClasses, .. PretrainingClasses];

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

    static Func<double, double, Rgb24?> Shader(string className, Rgb24 fill, Rgb24 dark)
    {
        if (!ClassNames.Contains(className)) throw new ArgumentException($"unknown class '{className}' (known: {string.Join(", ", ClassNames)})", nameof(className));
        var shape = className[(className.LastIndexOf(' ') + 1)..];
        var inside = ShapeVocabulary.Mask(shape);
        return className[..className.LastIndexOf(' ')] switch
        {
            "two stripe" => Stripes(2, inside, fill, dark),
            "three stripe" => Stripes(3, inside, fill, dark),
            "four stripe" => Stripes(4, inside, fill, dark),
            "hollow" => (u, v) => inside(u, v) && !inside(2 * u, 2 * v) ? fill : null,
            "dotted" => (u, v) => u * u + v * v <= 0.09 ? dark : inside(u, v) ? fill : null,
            "inverted" => (u, v) => inside(u, -v) ? fill : null,
            "bordered" => (u, v) => inside(u, v) ? (inside(u / 0.7, v / 0.7) ? fill : dark) : null,
            _ => (u, v) => inside(u, v) ? fill : null,   // solid, plain, upright: the shape as drawn
        };
    }

    /// <summary>The shape cut into 2n+1 equal horizontal bands; the n odd bands are dark stripes.</summary>
    static Func<double, double, Rgb24?> Stripes(int n, Func<double, double, bool> inside, Rgb24 fill, Rgb24 dark) => (u, v) =>
    {
        if (!inside(u, v)) return null;
        var band = Math.Min(2 * n, (int)((v + 1) / 2 * (2 * n + 1)));
        return band % 2 == 1 ? dark : fill;
    };
}
