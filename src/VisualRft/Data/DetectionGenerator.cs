using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Data;

/// <summary>
/// Few-shot and open-vocabulary detection scenes (visual-rft-spec.md §5.1: one row = one (image, category) pair with all
/// boxes of that category). Each image holds 1–3 objects of the queried category and 1–2 distractors of other categories,
/// half of them "hard" (sharing the colour or the shape of the target), all on a light textured background, none touching.
/// Objects span a quarter to two fifths of the image side: at 112 px that is 1–2 visual tokens, so that the IoU &gt; 0.5 of
/// the reward (§4.4) is within reach of a model that places boxes to within a few pixels. A share of the objects is faded
/// (<see cref="SceneSpec.FadedShare"/>, opacity 0.45–0.7), the analogue of the small or occluded objects a detector is
/// less sure of; a data set whose solutions carry visibility confidences gives such a box its opacity as confidence.
/// </summary>
internal static class DetectionGenerator
{
    public static VisualSample Generate(DatasetManifest m, DatasetSplit split, string category, int index)
    {
        var rng = new ShapeRng(ShapeRng.Mix((ulong)m.Seed, ShapeRng.Hash("detection"), ShapeRng.Hash(split.ToString()), ShapeRng.Hash(category), (ulong)index));
        int size = m.ImageSize;
        var canvas = new Canvas(size, size);
        canvas.Background(rng);

        // Open-vocabulary training never shows a novel category, not even as an unlabelled distractor (§5.2).
        var pool = (m.OpenVocabulary && split == DatasetSplit.Train ? m.BaseCategories : m.CategoriesOf(CategorySelection.All))
            .Where(c => c != category).ToList();
        ShapeVocabulary.TrySplit(category, out var colour, out var shape);
        var hard = pool.Where(c => c.StartsWith(colour + " ", StringComparison.Ordinal) || c.EndsWith(" " + shape, StringComparison.Ordinal)).ToList();

        // Drawn as for the default scene, then limited to the manifest's ranges (the default scenes keep their random stream).
        var scene = m.Scene;
        var u = rng.NextDouble();
        var nTargets = Math.Clamp(u < 1 - scene.MultiTargetShare ? 1 : u < 1 - scene.MultiTargetShare / 4 ? 2 : 3, scene.MinTargets, scene.MaxTargets);
        var nDistractors = Math.Clamp(rng.Next(1, 3), scene.MinDistractors, scene.MaxDistractors);
        var layout = new SceneLayout(size, size);
        var objects = new List<SceneObject>();
        var targets = new List<(PixelBox Box, double Opacity)>();
        for (var i = 0; i < nTargets + nDistractors; i++)
        {
            var isTarget = i < nTargets;
            var cat = isTarget ? category : (hard.Count > 0 && rng.Chance(0.5) ? rng.Pick(hard) : rng.Pick(pool));
            var side = layout.Side(rng, scene.MinObjectSide, scene.MaxObjectSide);
            var h = Math.Max(8, (int)(side * rng.Uniform(0.85, 1.15)));
            // The first target always fits on an empty canvas; a later object that finds no room is left out.
            if (!layout.TryPlace(rng, side, h, out var nominal)) continue;
            var opacity = rng.Chance(scene.FadedShare) ? Math.Round(rng.Uniform(0.45, 0.7), 2) : 1.0;
            var box = Draw(canvas, cat, nominal, rng, opacity);
            objects.Add(new SceneObject(cat, box));
            if (isTarget) targets.Add((box, opacity));
        }

        targets.Sort((a, b) => a.Box.Y1 != b.Box.Y1 ? a.Box.Y1.CompareTo(b.Box.Y1) : a.Box.X1.CompareTo(b.Box.X1));   // reading order
        var boxes1000 = targets.Select(t => t.Box.ToQwen1000(size, size)).ToList();
        var style = m.Solutions;
        var confidences = targets.Select(t => style.VisibilityConfidence ? t.Opacity : 1.0).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["targets"] = targets.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["distractors"] = string.Join("; ", objects.Where(o => o.Category != category).Select(o => o.Category)),
            ["faded targets"] = targets.Count(t => t.Opacity < 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (style.WithoutThinkShare > 0 && rng.Chance(style.WithoutThinkShare)) metadata[SampleMetadata.Think] = SampleMetadata.ThinkOmitted;
        return new VisualSample(
            Id: $"{m.Name}/{split.ToString().ToLowerInvariant()}/{category}/{index:D4}",
            Task: VisualTask.Detection,
            Image: canvas.ToImage(),
            Problem: Prompts.Detection(category),
            Solution: Prompts.DetectionSolution(boxes1000, confidences),
            Category: category,
            Boxes: [.. targets.Select(t => t.Box)],
            Boxes1000: boxes1000,
            Objects: objects,
            Split: split,
            Group: m.GroupOf(category),
            Metadata: metadata);
    }

    /// <summary>Paints a "{colour} {shape}" object into its nominal box and returns the painted pixels' box.</summary>
    internal static PixelBox Draw(Canvas canvas, string category, PixelBox nominal, ShapeRng rng, double opacity = 1)
    {
        ShapeVocabulary.TrySplit(category, out var colour, out var shape);
        var fill = ShapeVocabulary.Jittered(colour, rng);
        var inside = ShapeVocabulary.Mask(shape);
        return canvas.Paint(nominal, (u, v) => inside(u, v) ? fill : (Rgb24?)null, rng, opacity: opacity);
    }
}
