namespace VisualRft.Imaging;

/// <summary>PIL's <c>Image.resize(size, BICUBIC)</c> for 8-bit RGB, reproduced bit for bit (qwen2vl-spec §4.2): a separable
/// convolution whose kernel (a = −0.5, support 2) is stretched by the downscale factor, coefficients normalised to sum 1
/// in double and then quantised to 22-bit fixed point; horizontal pass first with a uint8 intermediate, then vertical.
/// Exactness matters because the reference processor (transformers' PIL path) feeds these bytes to the model.</summary>
public static class PilBicubic
{
    const int PrecisionBits = 32 - 8 - 2;
    const double Support = 2.0;

    static double Filter(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Per output index: first input index, tap count, and <c>ksize</c> fixed-point taps.</summary>
    static (int[] Bounds, int[] Taps, int KSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = Support * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var taps = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale, ss = 1.0 / filterScale, ww = 0.0;
            int xmin = Math.Max(0, (int)(center - support + 0.5));            // C casts truncate toward zero
            int xmax = Math.Min(inSize, (int)(center + support + 0.5)) - xmin;
            for (int x = 0; x < xmax; x++) { k[x] = Filter((x + xmin - center + 0.5) * ss); ww += k[x]; }
            for (int x = 0; x < xmax; x++)
            {
                double v = ww != 0.0 ? k[x] / ww : k[x];
                taps[xx * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return (bounds, taps, ksize);
    }

    static byte Clip8(int acc)
    {
        int v = acc >> PrecisionBits;                                        // arithmetic shift, as in C on two's complement
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>Resizes to <paramref name="width"/>×<paramref name="height"/>; returns a copy when the size is unchanged,
    /// and skips the pass of a dimension that does not change, as PIL does.</summary>
    public static RgbImage Resize(RgbImage src, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        var img = src;
        if (width != src.Width) img = Horizontal(img, width);
        if (height != src.Height) img = Vertical(img, height);
        return ReferenceEquals(img, src) ? new RgbImage(src.Width, src.Height, (byte[])src.Pixels.Clone()) : img;
    }

    static RgbImage Horizontal(RgbImage src, int outW)
    {
        var (bounds, taps, ksize) = Coefficients(src.Width, outW);
        var dst = new byte[outW * src.Height * 3];
        var s = src.Pixels;
        for (int y = 0; y < src.Height; y++)
            for (int xx = 0; xx < outW; xx++)
            {
                int xmin = bounds[xx * 2], n = bounds[xx * 2 + 1], kOff = xx * ksize;
                int a0 = 1 << (PrecisionBits - 1), a1 = a0, a2 = a0;
                for (int x = 0; x < n; x++)
                {
                    int p = (y * src.Width + xmin + x) * 3, kk = taps[kOff + x];
                    a0 += s[p] * kk; a1 += s[p + 1] * kk; a2 += s[p + 2] * kk;
                }
                int o = (y * outW + xx) * 3;
                dst[o] = Clip8(a0); dst[o + 1] = Clip8(a1); dst[o + 2] = Clip8(a2);
            }
        return new RgbImage(outW, src.Height, dst);
    }

    static RgbImage Vertical(RgbImage src, int outH)
    {
        var (bounds, taps, ksize) = Coefficients(src.Height, outH);
        var dst = new byte[src.Width * outH * 3];
        var s = src.Pixels;
        for (int yy = 0; yy < outH; yy++)
        {
            int ymin = bounds[yy * 2], n = bounds[yy * 2 + 1], kOff = yy * ksize;
            for (int x = 0; x < src.Width; x++)
            {
                int a0 = 1 << (PrecisionBits - 1), a1 = a0, a2 = a0;
                for (int y = 0; y < n; y++)
                {
                    int p = ((ymin + y) * src.Width + x) * 3, kk = taps[kOff + y];
                    a0 += s[p] * kk; a1 += s[p + 1] * kk; a2 += s[p + 2] * kk;
                }
                int o = (yy * src.Width + x) * 3;
                dst[o] = Clip8(a0); dst[o + 1] = Clip8(a1); dst[o + 2] = Clip8(a2);
            }
        }
        return new RgbImage(src.Width, outH, dst);
    }
}
