namespace VisualRft.Data;

/// <summary>
/// Places object boxes without overlap by rejection sampling. Objects are kept apart by a gap of a few pixels so that every
/// box is unambiguous (no occlusion: the detection and grounding answers have exactly one right box per object).
/// </summary>
internal sealed class SceneLayout(int width, int height, int gap = 3, int border = 2)
{
    readonly List<PixelBox> placed = [];

    public int ShortSide => Math.Min(width, height);

    /// <summary>A box side for an object on this canvas, between the given fractions of the image side.</summary>
    public int Side(ShapeRng rng, double minFraction, double maxFraction) =>
        rng.Next((int)(ShortSide * minFraction), (int)(ShortSide * maxFraction) + 1);

    /// <summary>Tries random positions for a w×h box that keeps clear of the placed ones and satisfies <paramref name="accept"/>.</summary>
    public bool TryPlace(ShapeRng rng, int w, int h, out PixelBox box, Func<PixelBox, bool>? accept = null, int tries = 200)
    {
        for (var t = 0; t < tries; t++)
        {
            var x = rng.Next(border, width - border - w + 1);
            var y = rng.Next(border, height - border - h + 1);
            box = new PixelBox(x, y, x + w, y + h);
            var grown = box.Inflate(gap);
            if ((accept == null || accept(box)) && !placed.Any(p => p.Intersects(grown)))
            {
                placed.Add(box);
                return true;
            }
        }
        box = default;
        return false;
    }
}
