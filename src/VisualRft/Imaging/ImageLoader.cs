using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Imaging;

/// <summary>
/// Decoding of untrusted image files with limits (issue 3, "images decoded with ImageSharp with size limits"; issue 12):
/// everything that can cost memory or time is checked from the file's structure before any pixel buffer exists.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Pixel count and aspect ratio come from the header: a decompression bomb (a tiny file declaring a huge canvas)
/// and a 1-pixel-wide strip are refused before decoding.</item>
/// <item>Only the first frame of an animated GIF or a multi-page TIFF is decoded (the model sees one image), so a
/// 200-frame file costs what one frame costs.</item>
/// <item>Metadata is not decoded, and in PNG and JPEG files the text and metadata chunks are capped
/// (<see cref="MaxMetadataBytes"/>): a 1 GB iTXt chunk is refused by reading its 8-byte header.</item>
/// <item>A PNG without its end chunk and a JPEG whose scan stops before the end-of-image marker are truncated files and
/// are refused (the decoder would fill the missing rows silently).</item>
/// </list>
/// </remarks>
public static class ImageLoader
{
    /// <summary>Default limit on width·height: 50 megapixels (a 12.8 MP image is the processor's default cap anyway).</summary>
    public const long DefaultMaxPixels = 50_000_000;

    /// <summary>Default limit on the long side over the short side: Qwen2-VL's processor refuses more than 200.</summary>
    public const double DefaultMaxAspectRatio = 200;

    /// <summary>Largest total of text and metadata chunks (PNG tEXt/zTXt/iTXt/eXIf/iCCP…, JPEG APPn/COM) accepted.</summary>
    public const long MaxMetadataBytes = 4 << 20;

    static readonly Configuration Decoding = CreateConfiguration();

    static Configuration CreateConfiguration()
    {
        var c = Configuration.Default.Clone();
        c.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First, IgnoreMetadata = true });
        c.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First, IgnoreMetadata = true });
        c.ImageFormatsManager.SetDecoder(PngFormat.Instance, new PngDecoder { IgnoreMetadata = true });
        c.ImageFormatsManager.SetDecoder(JpegFormat.Instance, new JpegDecoder { IgnoreMetadata = true });
        c.ImageFormatsManager.SetDecoder(WebpFormat.Instance, new WebpDecoder { IgnoreMetadata = true });
        return c;
    }

    /// <summary>Width and height from the file header only.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image file not found: {path}", path);
        IImageInfo? info;
        try { info = Image.Identify(Decoding, path, out _); }
        catch (Exception e) when (e is ImageFormatException or InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new InvalidDataException($"cannot read image header of {path}: {e.Message}", e);
        }
        if (info == null) throw new InvalidDataException($"{path} is not an image in a supported format (PNG, JPEG, BMP, GIF, TIFF, WebP, TGA, PBM)");
        return (info.Width, info.Height);
    }

    /// <summary>Decodes <paramref name="path"/> to RGB (alpha composited on white), refusing images whose width·height
    /// exceeds <paramref name="maxPixels"/> or whose sides differ by more than <paramref name="maxAspectRatio"/>, oversized
    /// metadata, and files that are corrupt or truncated.</summary>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels, double maxAspectRatio = DefaultMaxAspectRatio)
    {
        var (w, h) = ReadSize(path);
        if (w <= 0 || h <= 0) throw new InvalidDataException($"{path} declares an empty image ({w}x{h})");
        if ((long)w * h > maxPixels)
            throw new InvalidDataException($"{path} declares {w}x{h} = {(long)w * h} pixels, over the limit of {maxPixels} " +
                                           "(a decompression bomb or an image too large to process; raise maxPixels to accept it)");
        if ((double)Math.Max(w, h) / Math.Min(w, h) > maxAspectRatio)
            throw new InvalidDataException($"{path} declares {w}x{h}, an aspect ratio of {(double)Math.Max(w, h) / Math.Min(w, h):F0}, " +
                                           $"over the limit of {maxAspectRatio} (Qwen2-VL's processor refuses such images)");
        CheckStructure(path);
        try
        {
            using var image = Image.Load<Rgba32>(Decoding, path);
            if (image.Width != w || image.Height != h)
                throw new InvalidDataException($"{path}: decoded size {image.Width}x{image.Height} differs from its header {w}x{h}");
            return RgbImage.FromImageSharp(image);
        }
        catch (Exception e) when (e is ImageFormatException or EndOfStreamException or NotSupportedException or IndexOutOfRangeException or ArgumentException)
        {
            throw new InvalidDataException($"cannot decode image {path}: {e.Message}", e);
        }
    }

    /// <summary>The PNG and JPEG checks that ImageSharp does not make: metadata size and truncation.</summary>
    static void CheckStructure(string path)
    {
        using var s = new BufferedStream(File.OpenRead(path), 1 << 16);
        Span<byte> head = stackalloc byte[8];
        int n = s.ReadAtLeast(head, 8, throwOnEndOfStream: false);
        s.Position = 0;
        if (n == 8 && head.SequenceEqual(PngSignature)) CheckPng(path, s);
        else if (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) CheckJpeg(path, s);
    }

    static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Walks the chunk headers (seeking over the data): image data chunks may be any size, every other chunk
    /// counts towards <see cref="MaxMetadataBytes"/>; the file must reach IEND.</summary>
    static void CheckPng(string path, Stream s)
    {
        s.Position = 8;
        long metadata = 0;
        Span<byte> header = stackalloc byte[8];
        while (true)
        {
            if (s.ReadAtLeast(header, 8, throwOnEndOfStream: false) < 8)
                throw new InvalidDataException($"{path}: truncated PNG (the file ends before its IEND chunk)");
            long length = BinaryPrimitives.ReadUInt32BigEndian(header);
            string type = System.Text.Encoding.ASCII.GetString(header[4..]);
            if (type == "IEND") return;
            if (type is not ("IDAT" or "fdAT") && (metadata += length) > MaxMetadataBytes)
                throw new InvalidDataException($"{path}: PNG chunk {type} of {length:N0} bytes brings text and metadata to more than {MaxMetadataBytes:N0} bytes");
            if (s.Position + length + 4 > s.Length)
                throw new InvalidDataException($"{path}: truncated PNG (chunk {type} of {length:N0} bytes runs past the end of the file)");
            s.Position += length + 4;   // data and CRC
        }
    }

    /// <summary>Walks the JPEG segments: APPn and COM count towards <see cref="MaxMetadataBytes"/>; entropy-coded data
    /// is scanned for the next marker (0xFF followed by neither 0x00 stuffing nor a restart marker); the file must reach
    /// the end-of-image marker.</summary>
    static void CheckJpeg(string path, Stream s)
    {
        s.Position = 2;
        long metadata = 0;
        InvalidDataException Truncated() => new($"{path}: truncated JPEG (the data stops before the end-of-image marker)");
        int Next() { int b = s.ReadByte(); return b >= 0 ? b : throw Truncated(); }
        while (true)
        {
            int b = Next();
            if (b != 0xFF) throw new InvalidDataException($"{path}: corrupt JPEG (expected a marker at byte {s.Position - 1})");
            int marker;
            do marker = Next(); while (marker == 0xFF);   // fill bytes
            if (marker == 0xD9) return;                     // EOI
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue;
            int length = (Next() << 8) | Next();
            if (length < 2 || s.Position + length - 2 > s.Length) throw Truncated();
            if ((marker is >= 0xE0 and <= 0xEF or 0xFE) && (metadata += length) > MaxMetadataBytes)
                throw new InvalidDataException($"{path}: JPEG APPn/COM segments hold more than {MaxMetadataBytes:N0} bytes of metadata");
            s.Position += length - 2;
            if (marker != 0xDA) continue;
            // Entropy-coded data of the scan: stop at the first real marker, and step back onto it.
            while (true)
            {
                if (Next() != 0xFF) continue;
                int m = Next();
                while (m == 0xFF) m = Next();
                if (m == 0x00 || m is >= 0xD0 and <= 0xD7) continue;
                s.Position -= 2;
                break;
            }
        }
    }
}
