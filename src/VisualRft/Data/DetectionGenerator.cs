using SixLabors.ImageSharp.PixelFormats;

namespace VisualRft.Data;

/// <summary>
/// Few-shot and open-vocabulary detection scenes (visual-rft-spec.md §5.1: one row = one (image, category) pair with all
/// boxes of that category). Each image holds 1–3 objects of the queried category and 1–2 distractors of other categories,
/// half of them "hard" (sharing the colour or the shape of the target), all on a light textured background, none touching.
/// Objects span a quarter to two fifths of the image side: at 112 px that is 1–2 visual tokens, so that the IoU &gt; 0.5 of
/// the reward (§4.4) is within reach of a model that places boxes to within a few pixels.
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
        var nTargets = Math.Clamp(rng.NextDouble() switch { < 0.6 => 1, < 0.9 => 2, _ => 3 }, scene.MinTargets, scene.MaxTargets);
        var nDistractors = Math.Clamp(rng.Next(1, 3), scene.MinDistractors, scene.MaxDistractors);
        var layout = new SceneLayout(size, size);
        var objects = new List<SceneObject>();
        var targets = new List<PixelBox>();
        for (var i = 0; i < nTargets + nDistractors; i++)
        {
            var isTarget = i < nTargets;
            var cat = isTarget ? category : (hard.Count > 0 && rng.Chance(0.5) ? rng.Pick(hard) : rng.Pick(pool));
            var side = layout.Side(rng, scene.MinObjectSide, scene.MaxObjectSide);
            var h = Math.Max(8, (int)(side * rng.Uniform(0.85, 1.15)));
            // The first target always fits on an empty canvas; a later object that finds no room is left out.
            if (!layout.TryPlace(rng, side, h, out var nominal)) continue;
            var box = Draw(canvas, cat, nominal, rng);
            objects.Add(new SceneObject(cat, box));
            if (isTarget) targets.Add(box);
        }

        targets.Sort((a, b) => a.Y1 != b.Y1 ? a.Y1.CompareTo(b.Y1) : a.X1.CompareTo(b.X1));   // reading order
        var boxes1000 = targets.Select(b => b.ToQwen1000(size, size)).ToList();
        return new VisualSample(
            Id: $"{m.Name}/{split.ToString().ToLowerInvariant()}/{category}/{index:D4}",
            Task: VisualTask.Detection,
            Image: canvas.ToImage(),
            Problem: Prompts.Detection(category),
            Solution: Prompts.DetectionSolution(boxes1000),
            Category: category,
            Boxes: targets,
            Boxes1000: boxes1000,
            Objects: objects,
            Split: split,
            Group: m.GroupOf(category),
            Metadata: new Dictionary<string, string>
            {
                ["targets"] = targets.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["distractors"] = string.Join("; ", objects.Where(o => o.Category != category).Select(o => o.Category)),
            });
    }

    /// <summary>Paints a "{colour} {shape}" object into its nominal box and returns the painted pixels' box.</summary>
    internal static PixelBox Draw(Canvas canvas, string category, PixelBox nominal, ShapeRng rng)
    {
        ShapeVocabulary.TrySplit(category, out var colour, out var shape);
        var fill = ShapeVocabulary.Jittered(colour, rng);
        var inside = ShapeVocabulary.Mask(shape);
        return canvas.Paint(nominal, (u, v) => inside(u, v) ? fill : (Rgb24?)null, rng);
    }
}
