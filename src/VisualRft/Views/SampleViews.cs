using System.Text;
using VisualRft.Data;
using VisualRft.Geometry;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>A sample: its image with the ground-truth boxes and labels; a dataset: its card and a gallery.</summary>
public static class SampleViews
{
    /// <summary>Ground-truth boxes of a sample in image pixels, labelled with the category.</summary>
    public static IEnumerable<OverlayBox> Truth(VisualSample s) =>
        s.Boxes.Select(b => new OverlayBox(b.ToBox(), Overlay.TruthColor, s.Category, "truth"));

    public static View Sample(VisualSample s)
    {
        var svg = Overlay.Svg(s.Image, Truth(s), 300);
        var html = new StringBuilder("<div class=\"row\">").Append(svg).Append("<div>")
            .Append($"<h4>{E(s.Id)}</h4>")
            .Append(Table(["", ""], [
                ["<td class=l>task</td>", $"<td class=l>{EnumNames.Of(s.Task)} ({s.Split.ToString().ToLowerInvariant()}, {s.Group.ToString().ToLowerInvariant()} category)</td>"],
                ["<td class=l>category</td>", $"<td class=l>{E(s.Category)}</td>"],
                ["<td class=l>image</td>", $"<td class=l>{s.Width}×{s.Height} px</td>"],
                ["<td class=l>ground truth</td>", $"<td class=l>{(s.Boxes.Count == 0 ? "—" : string.Join("<br>", s.Boxes.Zip(s.Boxes1000).Select(p => $"{E(p.First.ToString())} = {E(p.Second.ToString())} in 0–1000")))}</td>"],
            ]))
            .Append($"<details><summary>problem (the prompt)</summary><pre>{E(s.Problem)}</pre></details>")
            .Append($"<div class=muted>solution</div><pre>{E(s.Solution)}</pre>")
            .Append("</div></div>");
        return new View(Root(html.ToString(), "sample"), Overlay.Svg(s.Image, Truth(s), 300),
            $"{s.Id}: {EnumNames.Of(s.Task)} '{s.Category}', {s.Boxes.Count} box(es), {s.Width}x{s.Height}");
    }

    /// <summary>A dataset card (what it mirrors, categories, sizes) and a gallery of up to <paramref name="gallery"/> samples.</summary>
    public static View Dataset(SyntheticDataset d, int gallery = 12)
    {
        var m = d.Manifest;
        var task = m.OpenVocabulary ? "open-vocabulary detection" : EnumNames.Of(m.Task);
        var shown = Gallery(d.Train, gallery);
        var card = Table(["", ""], [
            ["<td class=l>task</td>", $"<td class=l>{task} (prompt template {E(m.PromptTemplate)})</td>"],
            ["<td class=l>train</td>", $"<td class=l>{d.Train.Count} samples ({m.Train.Size} per {(m.Task == VisualTask.Grounding ? "set" : "category")}, {m.Train.Categories.ToString().ToLowerInvariant()} categories)</td>"],
            ["<td class=l>test</td>", $"<td class=l>{d.Test.Count} samples ({m.Test.Categories.ToString().ToLowerInvariant()} categories)</td>"],
            ["<td class=l>base categories</td>", $"<td class=l>{E(string.Join(", ", m.BaseCategories))}</td>"],
            ["<td class=l>novel categories</td>", $"<td class=l>{E(string.Join(", ", m.NovelCategories))}</td>"],
            ["<td class=l>images</td>", $"<td class=l>{m.ImageSize}×{m.ImageSize} px, seed {m.Seed}</td>"],
        ]);
        var html = new StringBuilder($"<h4>{E(m.Name)}</h4><div class=muted>{E(m.Description)}</div>").Append(card)
            .Append($"<div class=muted>training samples{(shown.Count < d.Train.Count ? $" ({shown.Count} of {d.Train.Count})" : "")}; ground truth in blue</div><div class=row>");
        foreach (var s in shown)
            html.Append($"<div class=card>{Overlay.Svg(s.Image, Truth(s), 150)}<div class=muted style=\"max-width:150px\">{E(s.Category)}</div></div>");
        html.Append("</div>");
        var svg = GallerySvg(shown);
        return new View(Root(html.ToString(), "dataset"), svg, $"dataset {m.Name}: {task}, {d.Train.Count} train / {d.Test.Count} test samples");
    }

    /// <summary>One sample per category first, then the rest, up to <paramref name="count"/>.</summary>
    static List<VisualSample> Gallery(IReadOnlyList<VisualSample> samples, int count)
    {
        var first = samples.GroupBy(s => s.Category).Select(g => g.First()).ToList();
        return [.. first.Concat(samples.Except(first)).Take(count)];
    }

    /// <summary>Thumbnails side by side in one SVG (nested SVG elements keep each overlay's own coordinates).</summary>
    internal static string GallerySvg(IReadOnlyList<VisualSample> samples, int thumb = 150, int perRow = 4)
    {
        int rows = (samples.Count + perRow - 1) / perRow;
        var sb = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{perRow * (thumb + 6)}\" height=\"{rows * (thumb + 6)}\">");
        for (int i = 0; i < samples.Count; i++)
            sb.Append($"<g transform=\"translate({i % perRow * (thumb + 6)},{i / perRow * (thumb + 6)})\">")
              .Append(Overlay.Svg(samples[i].Image, Truth(samples[i]), thumb)).Append("</g>");
        return sb.Append("</svg>").ToString();
    }
}
