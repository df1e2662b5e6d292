using VisualRft.Geometry;

namespace VisualRft.Data;

/// <summary>
/// A box in pixels of the image: (X1, Y1) is the top-left pixel edge, (X2, Y2) the bottom-right pixel edge (exclusive),
/// so a shape that paints columns 10..19 has X1 = 10, X2 = 20 and Width = 10.
/// </summary>
public readonly record struct PixelBox(int X1, int Y1, int X2, int Y2)
{
    public int Width => X2 - X1;
    public int Height => Y2 - Y1;
    public int Area => Math.Max(0, Width) * Math.Max(0, Height);
    public double CenterX => (X1 + X2) / 2.0;
    public double CenterY => (Y1 + Y2) / 2.0;

    /// <summary>
    /// Qwen2-VL's normalised frame: integers in [0, 1000] relative to the image size, computed as
    /// <c>int(x / w * 1000)</c> (truncation, as the LISA conversion <c>gen_sft.py</c> does; visual-rft-spec.md §3.4, §5.1).
    /// </summary>
    public Qwen1000Box ToQwen1000(int imageWidth, int imageHeight)
    {
        if (imageWidth <= 0 || imageHeight <= 0)
            throw new ArgumentOutOfRangeException(nameof(imageWidth), $"image size must be positive, got {imageWidth}x{imageHeight}");
        return Qwen1000Box.From(ImageFrames.Of(imageWidth, imageHeight).Convert(ToBox(), CoordinateFrame.OriginalPixels, CoordinateFrame.Normalized1000, FrameRounding.Truncate));
    }

    /// <summary>A box in the 0–1000 frame back in pixels of an image of this size, each edge rounded (Python <c>round()</c>).</summary>
    public static PixelBox From1000(Qwen1000Box box, int imageWidth, int imageHeight)
    {
        var b = ImageFrames.Of(imageWidth, imageHeight).Convert(box.ToBox(), CoordinateFrame.Normalized1000, CoordinateFrame.OriginalPixels, FrameRounding.Round);
        return new((int)b.X1, (int)b.Y1, (int)b.X2, (int)b.Y2);
    }

    public Box ToBox() => new(X1, Y1, X2, Y2);

    public bool Intersects(PixelBox o) => X1 < o.X2 && o.X1 < X2 && Y1 < o.Y2 && o.Y1 < Y2;

    public PixelBox Inflate(int margin) => new(X1 - margin, Y1 - margin, X2 + margin, Y2 + margin);

    public override string ToString() => $"[{X1}, {Y1}, {X2}, {Y2}]px";
}

/// <summary>A box in Qwen2-VL's 0–1000 integer frame (visual-rft-spec.md §3.2): what the detection and grounding answers carry.</summary>
public readonly record struct Qwen1000Box(int X1, int Y1, int X2, int Y2)
{
    public Box ToBox() => new(X1, Y1, X2, Y2);

    /// <summary>A box already rounded to integers in the 0–1000 frame (<see cref="FrameRounding"/>).</summary>
    public static Qwen1000Box From(Box b) => new((int)b.X1, (int)b.Y1, (int)b.X2, (int)b.Y2);

    public override string ToString() => $"[{X1}, {Y1}, {X2}, {Y2}]";
}
