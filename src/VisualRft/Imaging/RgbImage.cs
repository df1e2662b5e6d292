using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Imaging;

/// <summary>An 8-bit RGB image, row-major and interleaved (HWC): what the Qwen2-VL processor consumes
/// (the PIL path of the reference works on uint8 RGB, qwen2vl-spec §4.2).</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Height·Width·3 bytes, pixel (y, x) channel c at <c>(y·Width + x)·3 + c</c>.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size must be positive, got {width}x{height}");
        if (pixels.LongLength != (long)width * height * 3)
            throw new ArgumentException($"expected {(long)width * height * 3} bytes for a {width}x{height} RGB image, got {pixels.LongLength}", nameof(pixels));
        (Width, Height, Pixels) = (width, height, pixels);
    }

    public byte this[int y, int x, int c] => Pixels[(y * Width + x) * 3 + c];

    public static RgbImage FromImageSharp(Image<Rgb24> image)
    {
        var data = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(data);
        return new RgbImage(image.Width, image.Height, data);
    }

    /// <summary>Transparent pixels are composited on white, as transformers' <c>convert_to_rgb</c> does
    /// (PIL <c>alpha_composite</c> on an opaque white background, with PIL's integer arithmetic).</summary>
    public static RgbImage FromImageSharp(Image<Rgba32> image)
    {
        var rgba = new byte[image.Width * image.Height * 4];
        image.CopyPixelDataTo(rgba);
        var data = new byte[image.Width * image.Height * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            int a = rgba[i + 3];
            for (int c = 0; c < 3; c++) data[j + c] = a == 255 ? rgba[i + c] : CompositeOnWhite(rgba[i + c], a);
        }
        return new RgbImage(image.Width, image.Height, data);
    }

    // PIL AlphaComposite.c with dst = (255,255,255,255): coef1 = a·2^7, coef2 = (255−a)·2^7 (7 bits of precision),
    // then a rounded division by 255 done as ((v >> 8) + v) >> 8.
    static byte CompositeOnWhite(int src, int a)
    {
        const int precision = 7;
        uint tmp = (uint)(src * (a << precision) + 255 * ((255 - a) << precision)) + (0x80u << precision);
        return (byte)((((tmp >> 8) + tmp) >> 8) >> precision);
    }

    public Image<Rgb24> ToImageSharp() => Image.LoadPixelData<Rgb24>(Pixels, Width, Height);
}
