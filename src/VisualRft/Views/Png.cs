using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Processing;
using VisualRft.Imaging;

namespace VisualRft.Views;

/// <summary>Images as PNG data URIs, encoded once per image and width (a rollout view shows the same picture G + 1 times).</summary>
public static class Png
{
    static readonly ConditionalWeakTable<RgbImage, ConcurrentDictionary<int, string>> Cache = new();

    /// <summary>
    /// The image as a PNG data URI, at most <paramref name="width"/> pixels wide: an image shown smaller than it is gets
    /// the pixels it is shown with (a 640-px photo in a 160-px thumbnail carries a sixteenth of them), a smaller one
    /// stays as it is and the browser scales it up.
    /// </summary>
    public static string DataUri(RgbImage image, int? width = null)
    {
        var w = Math.Clamp(width ?? image.Width, 1, image.Width);
        return Cache.GetValue(image, _ => new()).GetOrAdd(w, w => "data:image/png;base64," + Convert.ToBase64String(Bytes(image, w)));
    }

    /// <summary>The PNG file of <paramref name="image"/>, at most <paramref name="width"/> pixels wide (at full size it is
    /// also what the engine exports store in their image columns).</summary>
    public static byte[] Bytes(RgbImage image, int? width = null)
    {
        var w = Math.Clamp(width ?? image.Width, 1, image.Width);
        using var img = image.ToImageSharp();
        if (w < image.Width)
            img.Mutate(x => x.Resize(w, Math.Max(1, (int)Math.Round(image.Height * (double)w / image.Width)), KnownResamplers.Box));
        using var ms = new MemoryStream();
        img.SaveAsPng(ms);
        return ms.ToArray();
    }
}
