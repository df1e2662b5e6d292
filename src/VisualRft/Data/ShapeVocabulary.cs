using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Data;

/// <summary>
/// The detection and grounding vocabulary: a category is "{colour} {shape}", e.g. "red circle". Colours are well apart in hue
/// so that a 16-token image still separates them; shapes are masks on the unit square [−1, 1]².
/// </summary>
public static class ShapeVocabulary
{
    /// <summary>The colours of the base categories the tiny model is pre-trained on (and of the classification shapes).</summary>
    public static IReadOnlyList<string> BaseColours { get; } = ["red", "green", "blue", "yellow", "purple", "orange"];

    /// <summary>
    /// Colours no pre-training category uses. The few-shot detection task's novel categories are made of them, so that the
    /// base model has to learn them from the shots, as the paper's few-shot categories are ones Qwen2-VL does not know
    /// (with novel pairs of known colours and shapes the tiny base model already found them: P@0.5 0.45).
    /// </summary>
    public static IReadOnlyList<string> NovelColours { get; } = ["pink", "cyan", "brown"];

    public static IReadOnlyList<string> Colours { get; } = [.. BaseColours, .. NovelColours];
    public static IReadOnlyList<string> Shapes { get; } = ["circle", "square", "triangle", "star", "diamond", "cross"];

    /// <summary>Every "{colour} {shape}" category, colour-major.</summary>
    public static IReadOnlyList<string> Categories { get; } = [.. Colours.SelectMany(c => Shapes.Select(s => $"{c} {s}"))];

    /// <summary>Splits a "{colour} {shape}" category of this vocabulary into its two words; false for any other name.</summary>
    public static bool TrySplit(string category, out string colour, out string shape)
    {
        var parts = category.Split(' ');
        colour = parts.Length == 2 ? parts[0] : "";
        shape = parts.Length == 2 ? parts[1] : "";
        return parts.Length == 2 && Colours.Contains(colour) && Shapes.Contains(shape);
    }

    internal static Rgb24 ColourOf(string colour) => colour switch
    {
        "red" => new Rgb24(214, 40, 40),
        "green" => new Rgb24(40, 160, 60),
        "blue" => new Rgb24(40, 80, 214),
        "yellow" => new Rgb24(232, 200, 30),
        "purple" => new Rgb24(134, 56, 176),
        "orange" => new Rgb24(244, 128, 24),
        "pink" => new Rgb24(250, 110, 190),
        "cyan" => new Rgb24(20, 200, 210),
        "brown" => new Rgb24(130, 80, 40),
        _ => throw new ArgumentException($"unknown colour '{colour}' (known: {string.Join(", ", Colours)})", nameof(colour)),
    };

    /// <summary>A palette colour with ±<paramref name="jitter"/> per channel, so colour names cover a small range.</summary>
    internal static Rgb24 Jittered(string colour, ShapeRng rng, int jitter = 12)
    {
        var c = ColourOf(colour);
        return new Rgb24(J(c.R), J(c.G), J(c.B));
        byte J(byte v) => (byte)Math.Clamp(v + rng.Next(-jitter, jitter + 1), 0, 255);
    }

    /// <summary>Whether the point (u, v) of the unit square [−1, 1]² (v grows downwards) lies inside the shape.</summary>
    internal static bool Contains(string shape, double u, double v) => Mask(shape)(u, v);

    /// <summary>The shape's inside test, looked up once per object rather than per pixel.</summary>
    internal static Func<double, double, bool> Mask(string shape) => shape switch
    {
        "circle" => static (u, v) => u * u + v * v <= 1.0,
        "square" => static (u, v) => Math.Abs(u) <= 1.0 && Math.Abs(v) <= 1.0,
        "triangle" => static (u, v) => v <= 1.0 && Math.Abs(u) <= (v + 1.0) / 2.0,          // apex up, base along the bottom edge
        "diamond" => static (u, v) => Math.Abs(u) + Math.Abs(v) <= 1.0,
        "cross" => static (u, v) => (Math.Abs(u) <= 0.34 && Math.Abs(v) <= 1.0) || (Math.Abs(v) <= 0.34 && Math.Abs(u) <= 1.0),
        "star" => static (u, v) => InsidePolygon(Star, u, v),
        _ => throw new ArgumentException($"unknown shape '{shape}' (known: {string.Join(", ", Shapes)})", nameof(shape)),
    };

    /// <summary>
    /// A five-pointed star (inner radius 0.5), written as literal vertices (cos/sin of multiples of 18°) so that no
    /// platform-dependent trigonometry enters the pixels, then stretched to fill the unit square.
    /// </summary>
    static readonly (double X, double Y)[] Star = FitToSquare(
    [
        (0, -1), (0.29389262615, -0.40450849719), (0.95105651630, -0.30901699437), (0.47552825815, 0.15450849719),
        (0.58778525229, 0.80901699437), (0, 0.5), (-0.58778525229, 0.80901699437), (-0.47552825815, 0.15450849719),
        (-0.95105651630, -0.30901699437), (-0.29389262615, -0.40450849719),
    ]);

    static (double X, double Y)[] FitToSquare((double X, double Y)[] p)
    {
        double minX = p.Min(q => q.X), maxX = p.Max(q => q.X), minY = p.Min(q => q.Y), maxY = p.Max(q => q.Y);
        return [.. p.Select(q => ((q.X - minX) / (maxX - minX) * 2 - 1, (q.Y - minY) / (maxY - minY) * 2 - 1))];
    }

    /// <summary>Even–odd rule point-in-polygon test.</summary>
    static bool InsidePolygon((double X, double Y)[] poly, double x, double y)
    {
        var inside = false;
        for (int i = 0, j = poly.Length - 1; i < poly.Length; j = i++)
        {
            var (xi, yi) = poly[i];
            var (xj, yj) = poly[j];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
    }
}
