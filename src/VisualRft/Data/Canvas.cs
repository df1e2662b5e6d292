using System.Runtime.InteropServices;
using SixLabors.ImageSharp.PixelFormats;
using VisualRft.Imaging;

namespace VisualRft.Data;

/// <summary>
/// A tiny software rasteriser (ImageSharp.Drawing is not available, platform-notes/anchors): shapes are painted by testing
/// pixel centres against a mask in the shape's unit square, so the ground-truth box is the exact extent of the painted
/// pixels. Only +, −, ×, ÷ on doubles are used (no trigonometry), which IEEE 754 makes identical on every platform.
/// </summary>
internal sealed class Canvas
{
    readonly Rgb24[] px;
    public int Width { get; }
    public int Height { get; }

    public Canvas(int width, int height)
    {
        Width = width; Height = height;
        px = new Rgb24[width * height];
    }

    /// <summary>
    /// A light background whose red level rises from left to right and blue level from top to bottom (150 → 240), with a
    /// random green level and ±<paramref name="noise"/> grain. Why: Qwen2-VL sees positions only through rotary phases,
    /// which are relative; the released models learn absolute coordinates from web-scale data, a teaching-scale model
    /// trained for minutes cannot. The gradient lets every patch carry where it is, as a real photo's context often does.
    /// </summary>
    public void Background(ShapeRng rng, int noise = 5)
    {
        var green = rng.Next(190, 236);
        for (var y = 0; y < Height; y++)
        for (var x = 0; x < Width; x++)
        {
            var n = rng.Grain(noise);
            px[y * Width + x] = new Rgb24(Clamp(150 + 90 * x / Math.Max(1, Width - 1) + n), Clamp(green + n),
                Clamp(150 + 90 * y / Math.Max(1, Height - 1) + n));
        }
    }

    /// <summary>
    /// Paints the pixels of <paramref name="nominal"/> whose centre the shader colours; u, v run from −1 to 1 across the box.
    /// Returns the tight box of the painted pixels. An <paramref name="opacity"/> below 1 blends the shader's colour with
    /// what is already there (a faded object).
    /// </summary>
    public PixelBox Paint(PixelBox nominal, Func<double, double, Rgb24?> shader, ShapeRng rng, int noise = 4, double opacity = 1)
    {
        double cx = nominal.CenterX, cy = nominal.CenterY, sx = 2.0 / nominal.Width, sy = 2.0 / nominal.Height;
        int x1 = int.MaxValue, y1 = int.MaxValue, x2 = int.MinValue, y2 = int.MinValue;
        for (var y = Math.Max(0, nominal.Y1); y < Math.Min(Height, nominal.Y2); y++)
        for (var x = Math.Max(0, nominal.X1); x < Math.Min(Width, nominal.X2); x++)
        {
            var c = shader((x + 0.5 - cx) * sx, (y + 0.5 - cy) * sy);
            if (c is not { } col) continue;
            var n = rng.Grain(noise);
            if (opacity < 1)
            {
                var old = px[y * Width + x];
                col = new Rgb24(Blend(col.R, old.R, opacity), Blend(col.G, old.G, opacity), Blend(col.B, old.B, opacity));
            }
            px[y * Width + x] = new Rgb24(Clamp(col.R + n), Clamp(col.G + n), Clamp(col.B + n));
            x1 = Math.Min(x1, x); y1 = Math.Min(y1, y); x2 = Math.Max(x2, x + 1); y2 = Math.Max(y2, y + 1);
        }
        if (x1 == int.MaxValue) throw new InvalidOperationException($"shape in {nominal} painted no pixel (box too small for the image)");
        return new PixelBox(x1, y1, x2, y2);
    }

    public RgbImage ToImage() => new(Width, Height, MemoryMarshal.AsBytes(px.AsSpan()).ToArray());

    static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    static byte Blend(byte top, byte under, double opacity) => Clamp((int)Math.Round(opacity * top + (1 - opacity) * under));
}
