using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Imaging;

/// <summary>Decoding of untrusted image files with size limits (issue 3, "images decoded with ImageSharp with size
/// limits"): the header is read first, so a decompression bomb (a tiny file declaring a huge canvas) is refused
/// before any pixel buffer is allocated.</summary>
public static class ImageLoader
{
    /// <summary>Default limit on width·height: 50 megapixels (a 12.8 MP image is the processor's default cap anyway).</summary>
    public const long DefaultMaxPixels = 50_000_000;

    /// <summary>Width and height from the file header only.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image file not found: {path}", path);
        IImageInfo? info;
        try { info = Image.Identify(path); }
        catch (Exception e) when (e is ImageFormatException or InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new InvalidDataException($"cannot read image header of {path}: {e.Message}", e);
        }
        if (info == null) throw new InvalidDataException($"{path} is not an image in a supported format (PNG, JPEG, BMP, GIF, TIFF, WebP, TGA, PBM)");
        return (info.Width, info.Height);
    }

    /// <summary>Decodes <paramref name="path"/> to RGB (alpha composited on white), refusing images whose
    /// width·height exceeds <paramref name="maxPixels"/> and files that are corrupt or truncated.</summary>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels)
    {
        var (w, h) = ReadSize(path);
        if (w <= 0 || h <= 0) throw new InvalidDataException($"{path} declares an empty image ({w}x{h})");
        if ((long)w * h > maxPixels)
            throw new InvalidDataException($"{path} declares {w}x{h} = {(long)w * h} pixels, over the limit of {maxPixels} " +
                                           "(a decompression bomb or an image too large to process; raise maxPixels to accept it)");
        try
        {
            using var image = Image.Load<Rgba32>(path);
            if (image.Width != w || image.Height != h)
                throw new InvalidDataException($"{path}: decoded size {image.Width}x{image.Height} differs from its header {w}x{h}");
            return RgbImage.FromImageSharp(image);
        }
        catch (Exception e) when (e is ImageFormatException or EndOfStreamException or NotSupportedException or IndexOutOfRangeException or ArgumentException)
        {
            throw new InvalidDataException($"cannot decode image {path}: {e.Message}", e);
        }
    }
}
