using System.Globalization;

namespace VisualRft.Data;

/// <summary>
/// Reasoning grounding (the analogue of LISA ReasonSeg, visual-rft-spec.md §3.4, §6.4): a scene of 3–5 shapes and an
/// instruction that needs a relation to single out one of them. The scene is built for the instruction, so the answer is
/// unique by construction:
/// <list type="bullet">
/// <item>"Which object is to the left of / to the right of / above / below the {reference}?" — the reference category occurs
/// once; the target lies wholly on that side of it; every other object's centre lies on the opposite side of the
/// reference's centre.</item>
/// <item>"Which is the largest / smallest {colour} object?", "Which is the largest / smallest {shape}?" — 2–3 objects share
/// the attribute and the target's side is at least 1.3× (largest) or at most 1/1.3 (smallest) of the others'; objects
/// without the attribute have any size.</item>
/// </list>
/// </summary>
internal static class GroundingGenerator
{
    public static IReadOnlyList<string> Relations { get; } =
        ["left", "right", "above", "below", "largest-colour", "smallest-colour", "largest-shape", "smallest-shape"];

    const int Sep = 2;   // pixels of clearance that keep the relation true for the painted (slightly smaller) boxes

    public static VisualSample Generate(DatasetManifest m, DatasetSplit split, int index)
    {
        var rng = new ShapeRng(ShapeRng.Mix((ulong)m.Seed, ShapeRng.Hash("grounding"), ShapeRng.Hash(split.ToString()), (ulong)index));
        int size = m.ImageSize;
        var pool = m.CategoriesOf(CategorySelection.All);
        var relation = rng.Pick(m.Relations);

        for (var attempt = 0; ; attempt++)
        {
            if (attempt == 1000) throw new InvalidOperationException($"{m.Source}: cannot lay out a '{relation}' scene on {size}x{size} pixels");
            var layout = new SceneLayout(size, size);
            var plan = relation.Contains('-') ? Superlative(relation, pool, layout, rng) : Spatial(relation, pool, layout, rng);
            if (plan is not { } p) continue;

            var canvas = new Canvas(size, size);
            canvas.Background(rng);
            var objects = p.Objects.Select(o => new SceneObject(o.Category, DetectionGenerator.Draw(canvas, o.Category, o.Box, rng))).ToList();
            var target = objects[0];
            var box1000 = target.Box.ToQwen1000(size, size);
            return new VisualSample(
                Id: $"{m.Name}/{split.ToString().ToLowerInvariant()}/{index:D4}",
                Task: VisualTask.Grounding,
                Image: canvas.ToImage(),
                Problem: Prompts.Grounding(p.Instruction),
                Solution: Prompts.GroundingSolution(box1000),
                Category: target.Category,
                Boxes: [target.Box],
                Boxes1000: [box1000],
                Objects: objects,
                Split: split,
                Group: m.GroupOf(target.Category),
                Metadata: new Dictionary<string, string>
                {
                    ["instruction"] = p.Instruction,
                    ["relation"] = relation,
                    ["reference"] = p.Reference,
                    ["attempts"] = (attempt + 1).ToString(CultureInfo.InvariantCulture),
                });
        }
    }

    /// <summary>The target is always <c>Objects[0]</c>.</summary>
    readonly record struct Plan(string Instruction, string Reference, List<SceneObject> Objects);

    static Plan? Spatial(string relation, IReadOnlyList<string> pool, SceneLayout layout, ShapeRng rng)
    {
        var reference = rng.Pick(pool);
        var others = pool.Where(c => c != reference).ToList();   // the reference category must be unique in the scene
        var sRef = layout.Side(rng, 0.16, 0.28);
        if (!layout.TryPlace(rng, sRef, sRef, out var r)) return null;
        Func<PixelBox, bool> isTarget = relation switch
        {
            "left" => b => b.X2 + Sep <= r.X1,
            "right" => b => b.X1 >= r.X2 + Sep,
            "above" => b => b.Y2 + Sep <= r.Y1,
            _ => b => b.Y1 >= r.Y2 + Sep,
        };
        Func<PixelBox, bool> isOpposite = relation switch
        {
            "left" => b => b.CenterX >= r.CenterX + Sep,
            "right" => b => b.CenterX <= r.CenterX - Sep,
            "above" => b => b.CenterY >= r.CenterY + Sep,
            _ => b => b.CenterY <= r.CenterY - Sep,
        };
        var sT = layout.Side(rng, 0.16, 0.28);
        if (!layout.TryPlace(rng, sT, sT, out var t, isTarget)) return null;
        var objects = new List<SceneObject> { new(rng.Pick(others), t), new(reference, r) };
        var nDistractors = rng.Next(1, 4);
        for (var i = 0; i < nDistractors; i++)
        {
            var s = layout.Side(rng, 0.14, 0.26);
            if (layout.TryPlace(rng, s, s, out var d, isOpposite)) objects.Add(new(rng.Pick(others), d));
        }
        var where = relation switch { "left" => "to the left of", "right" => "to the right of", "above" => "above", _ => "below" };
        return new Plan($"Which object is {where} the {reference}?", reference, objects);
    }

    static Plan? Superlative(string relation, IReadOnlyList<string> pool, SceneLayout layout, ShapeRng rng)
    {
        var largest = relation.StartsWith("largest", StringComparison.Ordinal);
        var byColour = relation.EndsWith("colour", StringComparison.Ordinal);
        string AttributeOf(string c) { ShapeVocabulary.TrySplit(c, out var col, out var sh); return byColour ? col : sh; }
        var attribute = AttributeOf(rng.Pick(pool));
        var sharing = pool.Where(c => AttributeOf(c) == attribute).ToList();
        var notSharing = pool.Where(c => AttributeOf(c) != attribute).ToList();

        // Target first (the hardest to fit when it is the largest), then the 1–2 others that share the attribute.
        var sTarget = largest ? layout.Side(rng, 0.24, 0.32) : layout.Side(rng, 0.14, 0.18);
        if (!layout.TryPlace(rng, sTarget, sTarget, out var t)) return null;
        var objects = new List<SceneObject> { new(rng.Pick(sharing), t) };
        var nSharing = rng.Next(1, 3);
        for (var i = 0; i < nSharing; i++)
        {
            var bigger = (int)Math.Ceiling(sTarget * 1.3);
            var s = largest ? rng.Next((int)(layout.ShortSide * 0.14), (int)(sTarget / 1.3) + 1)
                            : rng.Next(bigger, bigger + (int)(layout.ShortSide * 0.08) + 1);
            if (!layout.TryPlace(rng, s, s, out var b)) return null;
            objects.Add(new(rng.Pick(sharing), b));
        }
        if (notSharing.Count > 0)
        {
            var nOther = rng.Next(1, 3);
            for (var i = 0; i < nOther; i++)
            {
                var s = layout.Side(rng, 0.14, 0.30);
                if (layout.TryPlace(rng, s, s, out var b)) objects.Add(new(rng.Pick(notSharing), b));
            }
        }
        var which = largest ? "largest" : "smallest";
        var instruction = byColour ? $"Which is the {which} {attribute} object?" : $"Which is the {which} {attribute}?";
        return new Plan(instruction, attribute, objects);
    }
}
