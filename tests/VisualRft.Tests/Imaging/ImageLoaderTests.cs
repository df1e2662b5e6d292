using System.Buffers.Binary;
using System.Text;
using VisualRft.Imaging;

namespace VisualRft.Tests.Imaging;

public class ImageLoaderTests
{
    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"vrft-img-{Guid.NewGuid():N}-{name}");

    [Fact]
    public void Loads_the_golden_png_with_its_size()
    {
        var img = ImageLoader.Load(Path.Combine(Golden.Dir, "image_B.png"));
        Assert.Equal((100, 70), (img.Width, img.Height));
    }

    [Fact]
    public void Refuses_a_decompression_bomb_from_its_header_without_allocating_pixels()
    {
        var path = Temp("bomb.png");
        File.WriteAllBytes(path, BombPng(100_000, 100_000));
        Assert.True(new FileInfo(path).Length < 200);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains(path, e.Message);
        Assert.Contains("100000x100000", e.Message);
        Assert.True(allocated < 16 << 20, $"allocated {allocated} bytes while refusing a bomb");
    }

    [Fact]
    public void The_pixel_limit_is_configurable()
    {
        var path = Path.Combine(Golden.Dir, "image_A.png");
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path, maxPixels: 84 * 56 - 1));
        Assert.Contains("image_A.png", e.Message);
        Assert.Equal(84, ImageLoader.Load(path, maxPixels: 84 * 56).Width);
    }

    [Fact]
    public void Refuses_a_truncated_png()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Golden.Dir, "image_A.png"));
        var path = Temp("truncated.png");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Refuses_random_bytes_and_missing_files()
    {
        var path = Temp("random.png");
        var rng = new Random(3);
        var bytes = new byte[4096];
        rng.NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Throws<FileNotFoundException>(() => ImageLoader.Load(Temp("absent.png")));
    }

    [Fact]
    public void Transparent_pixels_are_composited_on_white_like_pil()
    {
        using var rgba = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgba32>(3, 1);
        rgba[0, 0] = new(10, 20, 30, 0);
        rgba[1, 0] = new(10, 20, 30, 255);
        rgba[2, 0] = new(0, 100, 200, 128);
        var rgb = RgbImage.FromImageSharp(rgba);
        Assert.Equal(new byte[] { 255, 255, 255, 10, 20, 30 }, rgb.Pixels[..6]);
        // worked by hand from PIL AlphaComposite.c: a=128 over white gives (127, 177, 227)
        Assert.Equal(new byte[] { 127, 177, 227 }, rgb.Pixels[6..]);
    }

    static string Save(string name, Action<Stream> write)
    {
        var path = Temp(name);
        using (var fs = File.Create(path)) write(fs);
        return path;
    }

    static SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgba32> Picture(int w, int h, byte shade)
    {
        var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgba32>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) img[x, y] = new((byte)(x * 7 + shade), (byte)(y * 5), shade, 255);
        return img;
    }

    [Fact]
    public void Only_the_first_frame_of_an_animation_is_decoded()
    {
        using var img = Picture(16, 16, 10);
        using (var second = Picture(16, 16, 200)) img.Frames.AddFrame(second.Frames.RootFrame);
        var bytes = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsGif(img, bytes);
        var gif = bytes.ToArray();
        // Cut the file inside the second frame: decoding every frame would fail, decoding the first cannot.
        int secondFrame = gif.AsSpan().LastIndexOf(new byte[] { 0x21, 0xF9, 0x04 });
        Assert.True(secondFrame > 100);
        var path = Save("two-frames.gif", s => s.Write(gif.AsSpan(0, secondFrame + 14)));
        var rgb = ImageLoader.Load(path);
        Assert.Equal((16, 16), (rgb.Width, rgb.Height));
        Assert.Equal(10, rgb.Pixels[2]);   // blue of pixel (0, 0) in the first frame
    }

    [Fact]
    public void A_huge_text_chunk_is_refused_from_its_header()
    {
        using var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, 8);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), 8);
        ihdr[8] = 8; ihdr[9] = 2;
        Chunk(ms, "IHDR", ihdr);
        ms.Write(new byte[] { 0x40, 0, 0, 0 });   // an iTXt chunk declaring 1 GiB, followed by nothing
        ms.Write("iTXt"u8);
        var path = Save("itxt.png", s => s.Write(ms.ToArray()));
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.Contains("iTXt of 1,073,741,824 bytes", e.Message);

        // A small text chunk is fine.
        using var img = Picture(8, 8, 3);
        SixLabors.ImageSharp.MetadataExtensions.GetPngMetadata(img.Metadata).TextData.Add(new SixLabors.ImageSharp.Formats.Png.PngTextData("Comment", "hello", "", ""));
        var ok = Save("small-text.png", s => SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, s));
        Assert.Equal(8, ImageLoader.Load(ok).Width);
    }

    [Fact]
    public void A_strip_one_pixel_wide_is_refused_from_its_header()
    {
        var path = Save("strip.png", s => s.Write(BombPng(1, 40_000_000)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.Contains("aspect ratio of 40000000", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
    }

    [Fact]
    public void A_jpeg_whose_scan_stops_early_is_refused()
    {
        using var img = Picture(64, 64, 50);
        var bytes = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsJpeg(img, bytes);
        var jpeg = bytes.ToArray();
        Assert.Equal(64, ImageLoader.Load(Save("whole.jpg", s => s.Write(jpeg))).Width);
        var cut = Save("cut.jpg", s => s.Write(jpeg.AsSpan(0, jpeg.Length * 2 / 3)));
        Assert.Contains("truncated JPEG", Assert.Throws<InvalidDataException>(() => ImageLoader.Load(cut)).Message);
    }

    /// <summary>A valid PNG whose IHDR declares a huge RGB canvas, followed by a tiny IDAT: the classic bomb.</summary>
    static byte[] BombPng(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        Chunk(ms, "IHDR", ihdr);
        Chunk(ms, "IDAT", new byte[] { 0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01 });
        Chunk(ms, "IEND", Array.Empty<byte>());
        return ms.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typed));
        s.Write(crc);
    }

    static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
