using System.Text;
using VisualRft.Geometry;
using VisualRft.Imaging;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>A box to draw over an image, in the image's own pixels. <c>Kind</c> is "truth" or "prediction" (an SVG class, so
/// that tests and scripts can find them); <c>Tag</c> names the completion a prediction belongs to.</summary>
public sealed record OverlayBox(Box Box, string Color, string? Label, string Kind, bool Dashed = false, int? Tag = null);

/// <summary>
/// An image with boxes drawn over it, as SVG: the pixels as an embedded PNG, each box a <c>rect</c> with a readable label.
/// The SVG's coordinate system is the image's pixels, so boxes land where the model's numbers say, at any display size.
/// </summary>
public static class Overlay
{
    /// <summary>The image at <paramref name="display"/> CSS pixels wide (the height follows the aspect ratio), boxes on top.</summary>
    public static string Svg(RgbImage image, IEnumerable<OverlayBox> boxes, int display = 320)
    {
        double w = image.Width, h = image.Height, scale = display / w;
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"vrft-overlay\" width=\"{display}\" height=\"{F(h * scale)}\" viewBox=\"0 0 {F(w)} {F(h)}\">");
        // href alone (SVG 2: every current browser and notebook front end): xlink:href as well doubled every image's bytes.
        sb.Append($"<image href=\"{Png.DataUri(image, display)}\" x=\"0\" y=\"0\" width=\"{F(w)}\" height=\"{F(h)}\" style=\"image-rendering:pixelated\" preserveAspectRatio=\"none\"/>");
        double font = 11 / scale;
        foreach (var b in boxes)
        {
            var n = b.Box.Normalized();
            // Boxes outside the image are clipped to it: the model's numbers can be anything.
            double x1 = Math.Clamp(n.X1, 0, w), y1 = Math.Clamp(n.Y1, 0, h), x2 = Math.Clamp(n.X2, 0, w), y2 = Math.Clamp(n.Y2, 0, h);
            if (!b.Box.IsFinite) continue;
            sb.Append($"<rect class=\"vrft-box vrft-{b.Kind}\"{(b.Tag is { } t ? $" data-completion=\"{t}\"" : "")} x=\"{F(x1)}\" y=\"{F(y1)}\" width=\"{F(Math.Max(0, x2 - x1))}\" height=\"{F(Math.Max(0, y2 - y1))}\" fill=\"none\" stroke=\"{b.Color}\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\"{(b.Dashed ? " stroke-dasharray=\"5 3\"" : "")}><title>{E(b.Label ?? b.Kind)}</title></rect>");
            if (b.Label is { Length: > 0 } label)
            {
                var ty = y1 - 2 / scale < font ? y1 + font : y1 - 2 / scale;
                sb.Append($"<text x=\"{F(x1 + 1 / scale)}\" y=\"{F(ty)}\" font-size=\"{F(font)}\" font-family=\"DejaVu Sans,sans-serif\" fill=\"{b.Color}\" stroke=\"#fff\" stroke-width=\"{F(3 / scale)}\" paint-order=\"stroke\">{E(label)}</text>");
            }
        }
        return sb.Append("</svg>").ToString();
    }

    /// <summary>Colour of a predicted box by the IoU it matched with: red unmatched, orange at 0.5 to green at 1.</summary>
    public static string IouColor(double? matchedIou)
    {
        if (matchedIou is not { } iou || !(iou > 0.5)) return "#cf222e";
        var t = Math.Clamp((iou - 0.5) / 0.5, 0, 1);
        int r = (int)(251 + (26 - 251) * t), g = (int)(140 + (127 - 140) * t), b = (int)(0 + (55 - 0) * t);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    public const string TruthColor = "#0969da";
}
