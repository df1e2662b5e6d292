namespace VisualRft.Geometry;

/// <summary>
/// An axis-aligned box given by two corners, (X1, Y1) meant as top-left and (X2, Y2) as bottom-right, in whatever
/// coordinate frame the caller holds (see <see cref="CoordinateFrame"/> and <see cref="FramedBox"/>).
/// </summary>
/// <remarks>
/// Definitions that the rewards rely on (visual-rft-spec.md §4.4, §4.9):
/// <list type="bullet">
/// <item><b>Inverted</b>: X2 &lt; X1 or Y2 &lt; Y1. The corners are kept as given; <see cref="Width"/>,
/// <see cref="Height"/> and <see cref="Area"/> are signed, exactly as the official code computes them, so an
/// inverted-on-one-axis box has a negative area and an inverted-on-both-axes box a positive one.
/// <see cref="Normalized"/> swaps the corners into min/max order.</item>
/// <item><b>Degenerate</b>: zero width or zero height (a point or a line); its area is 0.</item>
/// <item><b>Finite</b>: all four coordinates are finite doubles.</item>
/// </list>
/// </remarks>
public readonly record struct Box(double X1, double Y1, double X2, double Y2)
{
    /// <summary>Signed width X2 − X1 (negative for a box inverted on x).</summary>
    public double Width => X2 - X1;
    /// <summary>Signed height Y2 − Y1 (negative for a box inverted on y).</summary>
    public double Height => Y2 - Y1;
    /// <summary>Signed area (X2 − X1)·(Y2 − Y1), as the official IoU/GIoU code computes it.</summary>
    public double Area => (X2 - X1) * (Y2 - Y1);
    public bool IsInverted => X2 < X1 || Y2 < Y1;
    public bool IsDegenerate => X2 == X1 || Y2 == Y1;
    public bool IsFinite => double.IsFinite(X1) && double.IsFinite(Y1) && double.IsFinite(X2) && double.IsFinite(Y2);

    /// <summary>The same box with corners in (min, min), (max, max) order.</summary>
    public Box Normalized() => new(Math.Min(X1, X2), Math.Min(Y1, Y2), Math.Max(X1, X2), Math.Max(Y1, Y2));

    /// <summary>Multiplies x coordinates by <paramref name="sx"/> and y coordinates by <paramref name="sy"/>.</summary>
    public Box Scale(double sx, double sy) => new(X1 * sx, Y1 * sy, X2 * sx, Y2 * sy);

    /// <summary>
    /// IoU as the official detection reward computes it (visual-rft-spec.md §4.4, <c>calculate_iou</c>): intersection
    /// corners by max/min, <b>0 when the intersection is empty or a line</b> (xi2 ≤ xi1 or yi2 ≤ yi1), no epsilon,
    /// union = area(a) + area(b) − intersection. An inverted box never intersects anything, so its IoU is 0.
    /// Never throws; NaN input gives NaN or 0 depending on which comparison it reaches.
    /// </summary>
    public static double IoU(Box a, Box b)
    {
        double xi1 = Math.Max(a.X1, b.X1), yi1 = Math.Max(a.Y1, b.Y1);
        double xi2 = Math.Min(a.X2, b.X2), yi2 = Math.Min(a.Y2, b.Y2);
        if (xi2 <= xi1 || yi2 <= yi1) return 0.0;
        double inter = (xi2 - xi1) * (yi2 - yi1);
        double union = a.Area + b.Area - inter;
        return union > 0 ? inter / union : 0.0;
    }

    /// <summary>
    /// GIoU in the variant of the official LISA reward (visual-rft-spec.md §4.9): signed areas, intersection clamped at
    /// 0 per axis, union = area(a) + area(b) − inter, iou = inter/union (0 when union ≤ 0), C = area of the enclosing
    /// box, giou = iou − (C − union)/C (= iou when C ≤ 0). For two well-formed boxes the value is in [−1, 1]; with
    /// inverted corners it is not bounded (see <c>Rewards.Grounding</c> for the bounds that follow).
    /// </summary>
    public static double GIoU(Box a, Box b)
    {
        double iw = Math.Max(0.0, Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1));
        double ih = Math.Max(0.0, Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1));
        double inter = iw * ih;
        double union = a.Area + b.Area - inter;
        double iou = union > 0 ? inter / union : 0.0;
        double c = (Math.Max(a.X2, b.X2) - Math.Min(a.X1, b.X1)) * (Math.Max(a.Y2, b.Y2) - Math.Min(a.Y1, b.Y1));
        return c > 0 ? iou - (c - union) / c : iou;
    }

    public override string ToString() => $"[{X1:R}, {Y1:R}, {X2:R}, {Y2:R}]";
}
