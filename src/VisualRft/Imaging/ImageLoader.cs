using System.Buffers.Binary;
using System.IO.Compression;
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
/// <item>What the decoder would fill in silently is refused (issue 19): a PNG without its end chunk, whose zlib stream
/// ends before the last row the header declares, whose rows carry an unknown filter, or whose palette indices point past
/// its PLTE; a JPEG whose scan stops before the end-of-image marker, or whose scans hold fewer bits than the frame's
/// blocks need (a header of 7000 × 7000 over a tiny scan). So the pixel count is checked against what the data holds,
/// not only against the header. Other formats get the header limits only.</item>
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
        using var s = OpenFile(path);
        return ReadSize(s, path);
    }

    static (int Width, int Height) ReadSize(Stream s, string name)
    {
        IImageInfo? info;
        try { info = Image.Identify(Decoding, s, out _); }
        catch (Exception e) when (e is ImageFormatException or InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new InvalidDataException($"cannot read image header of {name}: {e.Message}", e);
        }
        finally { s.Position = 0; }
        if (info == null) throw new InvalidDataException($"{name} is not an image in a supported format (PNG, JPEG, BMP, GIF, TIFF, WebP, TGA, PBM)");
        return (info.Width, info.Height);
    }

    /// <summary>Decodes <paramref name="path"/> to RGB (alpha composited on white), refusing images whose width·height
    /// exceeds <paramref name="maxPixels"/> or whose sides differ by more than <paramref name="maxAspectRatio"/>, oversized
    /// metadata, and files that are corrupt, truncated or inconsistent.</summary>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels, double maxAspectRatio = DefaultMaxAspectRatio)
    {
        using var s = OpenFile(path);
        return Load(s, path, maxPixels, maxAspectRatio);
    }

    /// <summary><see cref="Load(string, long, double)"/> for an image held in memory (a data-set row);
    /// <paramref name="name"/> names it in errors.</summary>
    public static RgbImage Load(byte[] bytes, string name, long maxPixels = DefaultMaxPixels, double maxAspectRatio = DefaultMaxAspectRatio)
    {
        using var s = new MemoryStream(bytes, writable: false);
        return Load(s, name, maxPixels, maxAspectRatio);
    }

    static Stream OpenFile(string path) => new BufferedStream(IO.BoundedFile.OpenRegular(path, "image file"), 1 << 16);

    static RgbImage Load(Stream s, string name, long maxPixels, double maxAspectRatio)
    {
        var (w, h) = ReadSize(s, name);
        if (w <= 0 || h <= 0) throw new InvalidDataException($"{name} declares an empty image ({w}x{h})");
        if ((long)w * h > maxPixels)
            throw new InvalidDataException($"{name} declares {w}x{h} = {(long)w * h} pixels, over the limit of {maxPixels} " +
                                           "(a decompression bomb or an image too large to process; raise maxPixels to accept it)");
        if ((double)Math.Max(w, h) / Math.Min(w, h) > maxAspectRatio)
            throw new InvalidDataException($"{name} declares {w}x{h}, an aspect ratio of {(double)Math.Max(w, h) / Math.Min(w, h):F0}, " +
                                           $"over the limit of {maxAspectRatio} (Qwen2-VL's processor refuses such images)");
        CheckStructure(s, name);
        try
        {
            using var image = Image.Load<Rgba32>(Decoding, s);
            if (image.Width != w || image.Height != h)
                throw new InvalidDataException($"{name}: decoded size {image.Width}x{image.Height} differs from its header {w}x{h}");
            return RgbImage.FromImageSharp(image);
        }
        catch (Exception e) when (e is ImageFormatException or EndOfStreamException or NotSupportedException or IndexOutOfRangeException or ArgumentException)
        {
            throw new InvalidDataException($"cannot decode image {name}: {e.Message}", e);
        }
    }

    /// <summary>The PNG and JPEG checks that ImageSharp does not make: metadata size, truncation, and data that does not
    /// hold what the header declares.</summary>
    static void CheckStructure(Stream s, string name)
    {
        Span<byte> head = stackalloc byte[8];
        int n = s.ReadAtLeast(head, 8, throwOnEndOfStream: false);
        s.Position = 0;
        if (n == 8 && head.SequenceEqual(PngSignature)) CheckPng(name, s);
        else if (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) CheckJpeg(name, s);
        s.Position = 0;
    }

    static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Walks the chunk headers (seeking over the data): image data chunks may be any size, every other chunk
    /// counts towards <see cref="MaxMetadataBytes"/>; the file must reach IEND. Then the image data is inflated row by row
    /// (<see cref="CheckPngRows"/>).</summary>
    static void CheckPng(string path, Stream s)
    {
        s.Position = 8;
        long metadata = 0;
        Span<byte> header = stackalloc byte[8];
        Span<byte> ihdr = stackalloc byte[13];
        bool haveHeader = false;
        int paletteEntries = -1;
        var data = new List<(long Offset, long Length)>();
        while (true)
        {
            if (s.ReadAtLeast(header, 8, throwOnEndOfStream: false) < 8)
                throw new InvalidDataException($"{path}: truncated PNG (the file ends before its IEND chunk)");
            long length = BinaryPrimitives.ReadUInt32BigEndian(header);
            string type = System.Text.Encoding.ASCII.GetString(header[4..]);
            if (!haveHeader && type != "IHDR") throw new InvalidDataException($"{path}: corrupt PNG (the first chunk is {type}, not IHDR)");
            if (type == "IEND") break;
            if (type is not ("IDAT" or "fdAT") && (metadata += length) > MaxMetadataBytes)
                throw new InvalidDataException($"{path}: PNG chunk {type} of {length:N0} bytes brings text and metadata to more than {MaxMetadataBytes:N0} bytes");
            if (s.Position + length + 4 > s.Length)
                throw new InvalidDataException($"{path}: truncated PNG (chunk {type} of {length:N0} bytes runs past the end of the file)");
            if (type == "IHDR")
            {
                if (length != 13) throw new InvalidDataException($"{path}: corrupt PNG (IHDR of {length} bytes, not 13)");
                s.ReadExactly(ihdr);
                s.Position -= 13;
                haveHeader = true;
            }
            else if (type == "PLTE") paletteEntries = (int)(length / 3);
            else if (type == "IDAT") data.Add((s.Position, length));
            s.Position += length + 4;   // data and CRC
        }
        if (data.Count == 0) throw new InvalidDataException($"{path}: truncated PNG (no IDAT chunk: it holds no pixels)");
        CheckPngRows(path, s, ihdr, paletteEntries, data);
    }

    /// <summary>
    /// Inflates the image data and checks it against the header: every row the header declares (of every Adam7 pass when
    /// interlaced) must be there with a known filter type (0–4), and in a palette image every index must name an entry of
    /// PLTE. ImageSharp fills missing rows and maps bad indices without a word. Costs one inflate and two rows of memory.
    /// </summary>
    static void CheckPngRows(string path, Stream s, ReadOnlySpan<byte> ihdr, int paletteEntries, List<(long Offset, long Length)> data)
    {
        int width = (int)BinaryPrimitives.ReadUInt32BigEndian(ihdr), height = (int)BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
        int depth = ihdr[8], colour = ihdr[9], interlace = ihdr[12];
        int channels = colour switch
        {
            0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4,
            _ => throw new InvalidDataException($"{path}: corrupt PNG (colour type {colour})"),
        };
        if (depth is not (1 or 2 or 4 or 8 or 16)) throw new InvalidDataException($"{path}: corrupt PNG (bit depth {depth})");
        bool palette = colour == 3;
        if (palette && paletteEntries <= 0) throw new InvalidDataException($"{path}: corrupt PNG (a palette image without a PLTE chunk)");
        int bits = channels * depth, filterStep = Math.Max(1, bits / 8);
        // Adam7 passes as (x0, y0, dx, dy); one pass over everything when not interlaced.
        (int X0, int Y0, int Dx, int Dy)[] passes = interlace == 1
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        using var inflated = new ZLibStream(new ChunkStream(s, data), CompressionMode.Decompress);
        int rowsDeclared = passes.Sum(p => width > p.X0 && height > p.Y0 ? (height - p.Y0 + p.Dy - 1) / p.Dy : 0), rowsRead = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = width > x0 ? (width - x0 + dx - 1) / dx : 0, ph = height > y0 ? (height - y0 + dy - 1) / dy : 0;
            if (pw == 0 || ph == 0) continue;
            int rowBytes = (int)(((long)pw * bits + 7) / 8);
            var row = new byte[rowBytes + 1];
            var previous = new byte[rowBytes + 1];
            for (int y = 0; y < ph; y++, rowsRead++)
            {
                int got;
                try { got = inflated.ReadAtLeast(row, row.Length, throwOnEndOfStream: false); }
                catch (InvalidDataException e) { throw new InvalidDataException($"{path}: corrupt PNG (its zlib stream is damaged after {rowsRead:N0} of {rowsDeclared:N0} rows: {e.Message})", e); }
                if (got < row.Length)
                    throw new InvalidDataException($"{path}: truncated PNG (its zlib stream ends after {rowsRead:N0} of the {rowsDeclared:N0} rows " +
                                                   $"that its {width}x{height} header declares; the decoder would fill the rest)");
                if (row[0] > 4) throw new InvalidDataException($"{path}: corrupt PNG (row {rowsRead:N0} has filter type {row[0]}; only 0-4 exist)");
                if (!palette) continue;
                Unfilter(row, previous, filterStep);
                for (int x = 0; x < pw; x++)
                {
                    int index = depth == 8 ? row[1 + x] : (row[1 + x * depth / 8] >> (8 - depth - x * depth % 8)) & ((1 << depth) - 1);
                    if (index >= paletteEntries)
                        throw new InvalidDataException($"{path}: corrupt PNG (palette index {index} in row {rowsRead:N0}, but PLTE has {paletteEntries} entr{(paletteEntries == 1 ? "y" : "ies")})");
                }
                (row, previous) = (previous, row);
            }
        }
    }

    /// <summary>PNG filters undone in place (spec §9.2): <paramref name="row"/> starts with its filter byte,
    /// <paramref name="previous"/> is the unfiltered row above (zeros for the first).</summary>
    static void Unfilter(byte[] row, byte[] previous, int step)
    {
        int filter = row[0];
        for (int i = 1; i < row.Length; i++)
        {
            int a = i > step ? row[i - step] : 0, b = previous[i], c = i > step ? previous[i - step] : 0;
            row[i] += filter switch
            {
                1 => (byte)a,
                2 => (byte)b,
                3 => (byte)((a + b) / 2),
                4 => (byte)Paeth(a, b, c),
                _ => 0,
            };
        }
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>The data of a PNG's IDAT chunks as one stream, read from the file in place.</summary>
    sealed class ChunkStream(Stream file, List<(long Offset, long Length)> chunks) : Stream
    {
        int chunk;
        long within;

        public override int Read(byte[] buffer, int offset, int count)
        {
            while (chunk < chunks.Count && within == chunks[chunk].Length) (chunk, within) = (chunk + 1, 0);
            if (chunk == chunks.Count || count == 0) return 0;
            file.Position = chunks[chunk].Offset + within;
            int n = file.Read(buffer, offset, (int)Math.Min(count, chunks[chunk].Length - within));
            if (n == 0) return 0;
            within += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>
    /// Walks the JPEG segments: APPn and COM count towards <see cref="MaxMetadataBytes"/>; entropy-coded data is scanned
    /// for the next marker (0xFF followed by neither 0x00 stuffing nor a restart marker); the file must reach the
    /// end-of-image marker, and its scans must hold at least the bits the frame's blocks need: in a Huffman-coded JPEG every
    /// 8×8 block costs at least one bit for its DC code and, in a sequential one, one more for its first AC code (codes are
    /// at least one bit long), so fewer bits cannot encode the frame and the decoder would make up the rest.
    /// </summary>
    static void CheckJpeg(string path, Stream s)
    {
        s.Position = 2;
        long metadata = 0, scanBytes = 0, blocks = 0;
        int frameMarker = 0, frameWidth = 0, frameHeight = 0, scans = 0;
        InvalidDataException Truncated() => new($"{path}: truncated JPEG (the data stops before the end-of-image marker)");
        int Next() { int b = s.ReadByte(); return b >= 0 ? b : throw Truncated(); }
        while (true)
        {
            int b = Next();
            if (b != 0xFF) throw new InvalidDataException($"{path}: corrupt JPEG (expected a marker at byte {s.Position - 1})");
            int marker;
            do marker = Next(); while (marker == 0xFF);   // fill bytes
            if (marker == 0xD9) break;                      // EOI
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue;
            int length = (Next() << 8) | Next();
            if (length < 2 || s.Position + length - 2 > s.Length) throw Truncated();
            if ((marker is >= 0xE0 and <= 0xEF or 0xFE) && (metadata += length) > MaxMetadataBytes)
                throw new InvalidDataException($"{path}: JPEG APPn/COM segments hold more than {MaxMetadataBytes:N0} bytes of metadata");
            long next = s.Position + length - 2;
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC) && frameMarker == 0)
                (frameMarker, frameWidth, frameHeight, blocks) = ReadFrame(path, s, length);
            s.Position = next;
            if (marker != 0xDA) continue;
            scans++;
            // Entropy-coded data of the scan: stop at the first real marker, and step back onto it.
            while (true)
            {
                if (Next() != 0xFF) { scanBytes++; continue; }
                int m = Next();
                while (m == 0xFF) m = Next();
                if (m == 0x00) { scanBytes++; continue; }
                if (m is >= 0xD0 and <= 0xD7) continue;
                s.Position -= 2;
                break;
            }
        }
        if (scans == 0) throw new InvalidDataException($"{path}: truncated JPEG (no scan: it holds no pixels)");
        // Huffman-coded frames only (SOF0-3, SOF5-7); arithmetic coding (SOF9 and up) can spend less than a bit per block.
        if (frameMarker is >= 0xC0 and <= 0xC7)
        {
            long bitsPerBlock = frameMarker is 0xC2 or 0xC6 ? 1 : 2;   // progressive: the DC scans, at least
            long needed = (blocks * bitsPerBlock + 7) / 8;
            if (scanBytes < needed)
                throw new InvalidDataException($"{path}: truncated JPEG (its {frameWidth}x{frameHeight} frame of {blocks:N0} blocks needs at least " +
                                               $"{needed:N0} bytes of scan data, the file holds {scanBytes:N0}; the decoder would make up the rest)");
        }
    }

    /// <summary>The frame header: its marker, size and the number of 8×8 blocks of all its components (each component
    /// subsampled by its sampling factors against the largest ones).</summary>
    static (int Marker, int Width, int Height, long Blocks) ReadFrame(string path, Stream s, int length)
    {
        s.Position -= 3;
        int marker = s.ReadByte();
        s.Position += 2;
        Span<byte> f = stackalloc byte[Math.Min(length - 2, 6 + 3 * 255)];
        if (length - 2 < 6 || s.ReadAtLeast(f, f.Length, throwOnEndOfStream: false) < f.Length)
            throw new InvalidDataException($"{path}: corrupt JPEG (a frame header of {length} bytes)");
        int height = (f[1] << 8) | f[2], width = (f[3] << 8) | f[4], count = f[5];
        if (f.Length < 6 + 3 * count) throw new InvalidDataException($"{path}: corrupt JPEG (a frame header of {length} bytes for {count} components)");
        int hMax = 1, vMax = 1;
        for (int c = 0; c < count; c++) (hMax, vMax) = (Math.Max(hMax, f[7 + 3 * c] >> 4), Math.Max(vMax, f[7 + 3 * c] & 15));
        long blocks = 0;
        for (int c = 0; c < count; c++)
        {
            int h = Math.Max(1, f[7 + 3 * c] >> 4), v = Math.Max(1, f[7 + 3 * c] & 15);
            long cw = ((long)width * h + hMax - 1) / hMax, ch = ((long)height * v + vMax - 1) / vMax;
            blocks += ((cw + 7) / 8) * ((ch + 7) / 8);
        }
        return (marker, width, height, blocks);
    }
}
