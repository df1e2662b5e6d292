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
    /// IoU as the rewards use it (<see cref="IouVariant.Guarded"/>): the official <c>calculate_iou</c> of
    /// visual-rft-spec.md §4.4 — intersection corners by max/min, <b>0 when the intersection is empty or a line</b>
    /// (xi2 ≤ xi1 or yi2 ≤ yi1), no epsilon, union = area(a) + area(b) − intersection — except that a union that is not
    /// positive (0 through underflow, or NaN) gives 0 instead of an error. An inverted box never intersects anything,
    /// so its IoU is 0. Never throws.
    /// </summary>
    public static double IoU(Box a, Box b) => IoU(a, a.Area, b, b.Area, IouVariant.Guarded);

    /// <summary>IoU in one of the variants of <see cref="IouVariant"/>, with the areas computed from the corners.</summary>
    public static double IoU(Box a, Box b, IouVariant variant) => IoU(a, a.Area, b, b.Area, variant);

    /// <summary>
    /// The one IoU implementation. Intersection corners by Python's <c>max</c>/<c>min</c> (the first argument wins
    /// ties and NaN comparisons, as in every reference script), 0 when the intersection is empty or a line, then
    /// intersection / (union + <see cref="IouVariant.Epsilon"/>) where union = <paramref name="areaA"/> +
    /// <paramref name="areaB"/> − intersection, or <paramref name="areaA"/> alone for a crowd region
    /// (<see cref="IouVariant.CrowdUnion"/>). The areas are parameters because pycocotools computes a box's area as
    /// w·h from its [x, y, w, h], which can differ in the last bit from (x2 − x1)·(y2 − y1).
    /// </summary>
    /// <exception cref="DivideByZeroException">Only for <see cref="DegenerateUnion.Throw"/> with a union of exactly 0.</exception>
    public static double IoU(Box a, double areaA, Box b, double areaB, IouVariant variant)
    {
        double xi1 = PyMax(a.X1, b.X1), yi1 = PyMax(a.Y1, b.Y1);
        double xi2 = PyMin(a.X2, b.X2), yi2 = PyMin(a.Y2, b.Y2);
        if (xi2 <= xi1 || yi2 <= yi1) return 0.0;
        double inter = (xi2 - xi1) * (yi2 - yi1);
        double union = (variant.CrowdUnion ? areaA : areaA + areaB - inter) + variant.Epsilon;
        return variant.OnDegenerateUnion switch
        {
            DegenerateUnion.Zero => union > 0 ? inter / union : 0.0,
            DegenerateUnion.Throw => union == 0 ? throw new DivideByZeroException("IoU: the union of the two boxes is 0") : inter / union,
            _ => inter / union,
        };
    }

    /// <summary>Python's <c>max(a, b)</c>: b only if b &gt; a.</summary>
    static double PyMax(double a, double b) => b > a ? b : a;

    /// <summary>Python's <c>min(a, b)</c>: b only if b &lt; a.</summary>
    static double PyMin(double a, double b) => b < a ? b : a;

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

/// <summary>What <see cref="Box.IoU(Box, double, Box, double, IouVariant)"/> does with a union that is not positive.</summary>
public enum DegenerateUnion
{
    /// <summary>Returns 0 unless the union is &gt; 0 (also for NaN).</summary>
    Zero,
    /// <summary>Divides anyway, as C and NumPy code does (pycocotools' <c>bbIou</c>, the LISA script's <c>compute_iou</c>).</summary>
    Divide,
    /// <summary>Throws <see cref="DivideByZeroException"/> for a union of exactly 0, as Python's float division does;
    /// NaN divides through.</summary>
    Throw,
}

/// <summary>
/// The IoU variants of the reference code, as parameters of the one implementation in <see cref="Box"/>. For finite,
/// well-formed boxes they all agree except for <see cref="Epsilon"/> and <see cref="CrowdUnion"/>.
/// </summary>
/// <param name="Epsilon">Added to the union (LISA evaluation: 1e-6).</param>
/// <param name="CrowdUnion">The union is the first box's area alone: pycocotools' IoU of a detection with a crowd region (iscrowd = 1).</param>
/// <param name="OnDegenerateUnion">What a union ≤ 0 or NaN gives.</param>
public readonly record struct IouVariant(double Epsilon = 0, bool CrowdUnion = false, DegenerateUnion OnDegenerateUnion = DegenerateUnion.Zero)
{
    /// <summary>The rewards' IoU (<see cref="Box.IoU(Box, Box)"/>): the official formula, never throws.</summary>
    public static readonly IouVariant Guarded = new();

    /// <summary>The official reward's <c>calculate_iou</c> to the letter: ZeroDivisionError for a zero union (spec §4.4).</summary>
    public static readonly IouVariant OfficialReward = new(OnDegenerateUnion: DegenerateUnion.Throw);

    /// <summary>pycocotools' <c>bbIou</c> (maskApi.c) against a regular ground-truth box.</summary>
    public static readonly IouVariant PyCocoTools = new(OnDegenerateUnion: DegenerateUnion.Divide);

    /// <summary>pycocotools' <c>bbIou</c> against a crowd region: intersection over the detection's own area.</summary>
    public static readonly IouVariant PyCocoToolsCrowd = new(CrowdUnion: true, OnDegenerateUnion: DegenerateUnion.Divide);

    /// <summary>The LISA evaluation's <c>compute_iou</c> (visual-rft-spec.md §6.4): +1e-6 in the denominator.</summary>
    public static readonly IouVariant LisaEvaluation = new(Epsilon: 1e-6, OnDegenerateUnion: DegenerateUnion.Divide);
}
