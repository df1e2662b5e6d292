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

    /// <summary>The chunks of a PNG file as (type, data).</summary>
    static List<(string Type, byte[] Data)> Chunks(byte[] png)
    {
        var list = new List<(string, byte[])>();
        for (int at = 8; at < png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            list.Add((Encoding.ASCII.GetString(png, at + 4, 4), png[(at + 8)..(at + 8 + length)]));
            at += 12 + length;
        }
        return list;
    }

    static byte[] Png(IEnumerable<(string Type, byte[] Data)> chunks)
    {
        using var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        foreach (var (type, data) in chunks) Chunk(ms, type, data);
        return ms.ToArray();
    }

    static byte[] Noise(int w, int h, Action<Stream, SixLabors.ImageSharp.Image> save)
    {
        using var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(w, h);
        var rng = new Random(5);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) img[x, y] = new((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
        var ms = new MemoryStream();
        save(ms, img);
        return ms.ToArray();
    }

    [Fact]
    public void A_png_whose_zlib_stream_is_cut_is_refused_though_its_chunks_are_whole()
    {
        // The probe's file: 640 × 480, the image data cut to its first 5,000 bytes, in a valid chunk, and IEND after it.
        var whole = Noise(640, 480, (s, i) => SixLabors.ImageSharp.ImageExtensions.SaveAsPng(i, s));
        var chunks = Chunks(whole);
        var data = chunks.Where(c => c.Type == "IDAT").SelectMany(c => c.Data).Take(5000).ToArray();
        var cut = Png([chunks[0], ("IDAT", data), ("IEND", [])]);
        Assert.Equal((640, 480), ImageLoader.ReadSize(Save("whole.png", s => s.Write(whole))));
        var path = Save("cut-zlib.png", s => s.Write(cut));
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated PNG (its zlib stream ends after", e.Message);
        Assert.Contains("of the 480 rows", e.Message);
        // the same bytes held in memory (a data-set row) are refused under the name given
        Assert.Contains("row 7 of train.parquet", Assert.Throws<InvalidDataException>(() => ImageLoader.Load(cut, "row 7 of train.parquet")).Message);
        Assert.Equal(640, ImageLoader.Load(whole, "whole").Width);
    }

    /// <summary>A 4 × 2 palette PNG with <paramref name="entries"/> PLTE entries, whose rows (filter 0, Sub, …) hold
    /// <paramref name="indices"/> after unfiltering.</summary>
    static byte[] PalettePng(int entries, byte[] indices, byte filter)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, 4);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), 2);
        ihdr[8] = 8; ihdr[9] = 3;
        var raw = new MemoryStream();
        for (int y = 0; y < 2; y++)
        {
            raw.WriteByte(filter);
            for (int x = 0; x < 4; x++)
                raw.WriteByte(filter == 1 ? (byte)(indices[y * 4 + x] - (x > 0 ? indices[y * 4 + x - 1] : 0)) : indices[y * 4 + x]);
        }
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) zs.Write(raw.ToArray());
        return Png([("IHDR", ihdr), ("PLTE", [.. Enumerable.Range(0, entries * 3).Select(i => (byte)(i * 40))]), ("IDAT", z.ToArray()), ("IEND", [])]);
    }

    [Fact]
    public void Palette_indices_past_the_palette_are_refused_after_unfiltering()
    {
        byte[] indices = [0, 1, 2, 3, 3, 2, 1, 0];
        Assert.Equal(4, ImageLoader.Load(Save("p4.png", s => s.Write(PalettePng(4, indices, filter: 1))), 1000, 200).Width);
        var one = Save("p1.png", s => s.Write(PalettePng(1, indices, filter: 0)));
        Assert.Contains("palette index 1 in row 0, but PLTE has 1 entry", Assert.Throws<InvalidDataException>(() => ImageLoader.Load(one)).Message);
        // with the Sub filter the stored bytes are differences (0, 1, 1, 1): only the unfiltered index 2 is out of a 2-entry palette
        var two = Save("p2.png", s => s.Write(PalettePng(2, indices, filter: 1)));
        Assert.Contains("palette index 2 in row 0, but PLTE has 2 entries", Assert.Throws<InvalidDataException>(() => ImageLoader.Load(two)).Message);
    }

    [Fact]
    public void Pngs_that_encoders_write_still_load_palette_interlaced_and_16_bit()
    {
        foreach (var (name, encoder) in new (string, SixLabors.ImageSharp.Formats.Png.PngEncoder)[]
                 {
                     ("palette", new() { ColorType = SixLabors.ImageSharp.Formats.Png.PngColorType.Palette }),
                     ("adam7", new() { InterlaceMethod = SixLabors.ImageSharp.Formats.Png.PngInterlaceMode.Adam7 }),
                     ("adam7-palette", new() { ColorType = SixLabors.ImageSharp.Formats.Png.PngColorType.Palette, InterlaceMethod = SixLabors.ImageSharp.Formats.Png.PngInterlaceMode.Adam7 }),
                     ("grey-2-bit", new() { ColorType = SixLabors.ImageSharp.Formats.Png.PngColorType.Grayscale, BitDepth = SixLabors.ImageSharp.Formats.Png.PngBitDepth.Bit2 }),
                     ("rgba-16-bit", new() { ColorType = SixLabors.ImageSharp.Formats.Png.PngColorType.RgbWithAlpha, BitDepth = SixLabors.ImageSharp.Formats.Png.PngBitDepth.Bit16 }),
                 })
        {
            using var img = Picture(37, 23, 9);
            var path = Save(name + ".png", s => img.Save(s, encoder));
            var rgb = ImageLoader.Load(path);
            Assert.Equal((37, 23), (rgb.Width, rgb.Height));
        }
    }

    [Fact]
    public void A_jpeg_header_of_7000_by_7000_over_a_tiny_scan_is_refused()
    {
        var jpeg = Noise(64, 64, (s, i) => SixLabors.ImageSharp.ImageExtensions.SaveAsJpeg(i, s));
        Assert.Equal(64, ImageLoader.Load(jpeg, "noise.jpg").Width);
        int sof = jpeg.AsSpan().IndexOf(new byte[] { 0xFF, 0xC0 });
        Assert.True(sof > 0);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 7000);   // height
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 7000);   // width
        var path = Save("bomb.jpg", s => s.Write(jpeg));
        Assert.Equal((7000, 7000), ImageLoader.ReadSize(path));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "refused before a pixel buffer was made");
        Assert.Contains(path, e.Message);
        Assert.Contains("its 7000x7000 frame of", e.Message);
        Assert.Contains("needs at least", e.Message);
    }

    [Fact]
    public void Directories_and_devices_are_refused_by_name()
    {
        var dir = Temp("folder.png");
        Directory.CreateDirectory(dir);
        Assert.Contains("is a directory", Assert.Throws<InvalidDataException>(() => ImageLoader.Load(dir)).Message);
        var e = Assert.Throws<InvalidDataException>(() => ImageLoader.Load("/dev/zero"));
        Assert.Contains("/dev/zero: not a regular file", e.Message);
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
