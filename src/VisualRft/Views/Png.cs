using System.Runtime.CompilerServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using VisualRft.Imaging;

namespace VisualRft.Views;

/// <summary>Images as PNG data URIs (encoded once per image: a rollout view shows the same picture G + 1 times).</summary>
public static class Png
{
    static readonly ConditionalWeakTable<RgbImage, string> Cache = new();

    public static string DataUri(RgbImage image) => Cache.GetValue(image, Encode);

    static string Encode(RgbImage image) => "data:image/png;base64," + Convert.ToBase64String(Bytes(image));

    /// <summary>The PNG file of <paramref name="image"/> (also what the engine exports store in their image columns).</summary>
    public static byte[] Bytes(RgbImage image)
    {
        using var img = Image.LoadPixelData<Rgb24>(image.Pixels, image.Width, image.Height);
        using var ms = new MemoryStream();
        img.SaveAsPng(ms);
        return ms.ToArray();
    }
}
