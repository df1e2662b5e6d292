namespace VisualRft.Geometry;

/// <summary>
/// The coordinate frames a box can live in. Mixing them up is the most common "IoU reward stays at zero" bug that
/// users report (visual-rft-spec.md §3.2, §8; anchors.md §B.2), so every conversion names both frames.
/// </summary>
public enum CoordinateFrame
{
    /// <summary>Qwen2-VL's frame: x and y normalised to [0, 1000] relative to the image width and height. Visual-RFT's
    /// prompts, ground truth and rewards use it (spec §3.2).</summary>
    Normalized1000,
    /// <summary>Pixels of the image after the processor's <c>smart_resize</c> (multiples of 28). Qwen2.5-VL answers in
    /// this frame.</summary>
    ResizedPixels,
    /// <summary>Pixels of the original image as stored on disk (COCO/LVIS annotations).</summary>
    OriginalPixels,
}

/// <summary>What a conversion does with the converted coordinates. Each data format fixes its own rule, so each caller
/// names the one its source uses.</summary>
public enum FrameRounding
{
    /// <summary>Keep the exact quotient (drawing, evaluation in pixels).</summary>
    Keep,
    /// <summary>Python <c>int()</c>, toward zero: how the LISA conversion <c>gen_sft.py</c> writes 0–1000 solutions
    /// (visual-rft-spec.md §3.4, §5.1).</summary>
    Truncate,
    /// <summary>Python <c>round()</c>, halves to even.</summary>
    Round,
}

/// <summary>Width and height of an image in pixels.</summary>
public readonly record struct ImageSize(int Width, int Height)
{
    public override string ToString() => $"{Width}x{Height}";
}

/// <summary>A box tagged with the frame its coordinates are in.</summary>
public readonly record struct FramedBox(Box Box, CoordinateFrame Frame)
{
    /// <summary>IoU of two boxes in the same frame; refuses to compare boxes from different frames.</summary>
    public static double IoU(FramedBox a, FramedBox b) => Box.IoU(a.Box, SameFrame(a, b).Box);

    /// <summary>GIoU (LISA variant) of two boxes in the same frame.</summary>
    public static double GIoU(FramedBox a, FramedBox b) => Box.GIoU(a.Box, SameFrame(a, b).Box);

    static FramedBox SameFrame(FramedBox a, FramedBox b) => a.Frame == b.Frame ? b
        : throw new ArgumentException($"cannot compare a box in frame {a.Frame} with a box in frame {b.Frame}; convert one with ImageFrames.Convert first");
}

/// <summary>
/// Conversions between the three frames of one image, given its original size and the size the processor resized
/// it to. The normalised frame is relative to the image, so it maps to either pixel frame by a per-axis scale
/// (the resize may change the aspect ratio slightly because both sides are rounded to multiples of 28).
/// </summary>
public sealed record ImageFrames(ImageSize Original, ImageSize Resized)
{
    /// <summary>The full extent of the image along x and y in <paramref name="frame"/>.</summary>
    (double W, double H) Extent(CoordinateFrame frame) => frame switch
    {
        CoordinateFrame.Normalized1000 => (1000.0, 1000.0),
        CoordinateFrame.ResizedPixels => (Resized.Width, Resized.Height),
        CoordinateFrame.OriginalPixels => (Original.Width, Original.Height),
        _ => throw new ArgumentOutOfRangeException(nameof(frame), frame, "unknown coordinate frame"),
    };

    /// <summary>Re-expresses <paramref name="box"/> in frame <paramref name="to"/>.</summary>
    public FramedBox Convert(FramedBox box, CoordinateFrame to, FrameRounding rounding = FrameRounding.Keep)
    {
        Validate();
        if (box.Frame == to) return box;
        var (fw, fh) = Extent(box.Frame);
        var (tw, th) = Extent(to);
        return new FramedBox(Rescale(box.Box, (fw, fh), (tw, th), rounding), to);
    }

    /// <summary>Convenience overload for an untagged box known to be in frame <paramref name="from"/>.</summary>
    public Box Convert(Box box, CoordinateFrame from, CoordinateFrame to, FrameRounding rounding = FrameRounding.Keep) =>
        Convert(new FramedBox(box, from), to, rounding).Box;

    /// <summary>The frames of an image used at its own size (no resize): its pixels and 0–1000.</summary>
    public static ImageFrames Of(int width, int height) => new(new ImageSize(width, height), new ImageSize(width, height));

    /// <summary>
    /// The one arithmetic of every conversion: each coordinate divided by the extent it was measured against, times the
    /// extent of the new frame (<c>x / w * 1000</c> and <c>x / 1000 * w</c>, in the order the official scripts write them,
    /// so 0–1000 integers come out as theirs do), then rounded by <paramref name="rounding"/>.
    /// </summary>
    public static Box Rescale(Box box, (double W, double H) from, (double W, double H) to, FrameRounding rounding = FrameRounding.Keep)
    {
        double X(double v) => Round(v / from.W * to.W, rounding);
        double Y(double v) => Round(v / from.H * to.H, rounding);
        return new Box(X(box.X1), Y(box.Y1), X(box.X2), Y(box.Y2));
    }

    static double Round(double v, FrameRounding rounding) => rounding switch
    {
        FrameRounding.Keep => v,
        FrameRounding.Truncate => Math.Truncate(v),
        FrameRounding.Round => Math.Round(v, MidpointRounding.ToEven),
        _ => throw new ArgumentOutOfRangeException(nameof(rounding), rounding, "unknown rounding"),
    };

    void Validate()
    {
        if (Original.Width <= 0 || Original.Height <= 0)
            throw new ArgumentException($"original image size must be positive, got {Original}");
        if (Resized.Width <= 0 || Resized.Height <= 0)
            throw new ArgumentException($"resized image size must be positive, got {Resized}");
    }
}
