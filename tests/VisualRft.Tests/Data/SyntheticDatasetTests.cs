using System.Text.RegularExpressions;
using SixLabors.ImageSharp.PixelFormats;
using VisualRft.Data;

namespace VisualRft.Tests.Data;

/// <summary>
/// Properties of the generated data. Datasets are generated once per class (a fixture) with modest sizes so the whole file
/// runs in a few seconds.
/// </summary>
public sealed class SyntheticDatasetTests : IClassFixture<SyntheticDatasetTests.Sets>
{
    public sealed class Sets
    {
        public SyntheticDataset Detection { get; } = SyntheticDatasets.Load("shapes-detection", shots: 16, testSize: 8);
        public SyntheticDataset Ovd { get; } = SyntheticDatasets.Load("shapes-ovd", shots: 2, testSize: 4);
        public SyntheticDataset Classification { get; } = SyntheticDatasets.Load("shapes-classification", shots: 8, testSize: 4);
        public SyntheticDataset Grounding { get; } = SyntheticDatasets.Load("shapes-grounding", shots: 200, testSize: 40);
        public IEnumerable<VisualSample> All => new[] { Detection, Ovd, Classification, Grounding }.SelectMany(d => d.Train.Concat(d.Test));
    }

    readonly Sets sets;
    public SyntheticDatasetTests(Sets sets) => this.sets = sets;

    [Fact]
    public void Same_manifest_and_seed_give_identical_bytes_and_another_seed_does_not()
    {
        var a = SyntheticDatasets.Load("shapes-detection", shots: 2, testSize: 1);
        var b = SyntheticDatasets.Load("shapes-detection", shots: 2, testSize: 1);
        var c = SyntheticDatasets.Load("shapes-detection", shots: 2, testSize: 1, seed: 7);
        Assert.Equal(a.Fingerprint(), b.Fingerprint());
        Assert.NotEqual(a.Fingerprint(), c.Fingerprint());
        Assert.Equal(64, a.Fingerprint().Length);
    }

    [Theory]
    [InlineData("shapes-detection", "f59469dfd0d64ab9")]
    [InlineData("shapes-ovd", "de0f00086d17b82a")]
    [InlineData("shapes-classification", "14816c01e81d4336")]
    [InlineData("shapes-grounding", "947715ba190d2214")]
    [InlineData("shapes-pretrain", "2a0d263cd6a1d1f8")]
    [InlineData("shapes-pretrain-classification", "602363cc560a606f")]
    [InlineData("shapes-pretrain-grounding", "6b415356f348093f")]
    [InlineData("shapes-single-object", "938bf5021622b06b")]
    [InlineData("shapes-first-look", "a83536ca4808090a")]
    public void Generators_are_pinned(string name, string fingerprint16)
    {
        // Regression pin: a change to any generator silently changes every dataset and every number measured on it.
        // If a change is intended, update these prefixes in the same commit and say so in its message.
        var d = SyntheticDatasets.Load(name, shots: 1, testSize: 1);
        Assert.Equal(fingerprint16, d.Fingerprint()[..16]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    public void K_shot_splits_have_k_images_per_category_and_nest(int shots)
    {
        var m = SyntheticDatasets.Embedded("shapes-detection");
        var train = SyntheticDataset.Generate(m.With(shots: shots), DatasetSplit.Train);
        Assert.Equal(shots * m.NovelCategories.Count, train.Count);
        foreach (var g in train.GroupBy(s => s.Category)) Assert.Equal(shots, g.Count());
        // The k-shot set is the first k images per category of the 16-shot set.
        var larger = sets.Detection.Train.GroupBy(s => s.Category).SelectMany(g => g.Take(shots));
        Assert.Equal(SyntheticDataset.FingerprintOf(larger), SyntheticDataset.FingerprintOf(train));
    }

    [Fact]
    public void Classification_shots_count_per_class()
    {
        var ds = sets.Classification;
        Assert.Equal(8 * 10, ds.Train.Count);
        Assert.Equal(4 * 10, ds.Test.Count);
        Assert.All(ds.Train.GroupBy(s => s.Category), g => Assert.Equal(8, g.Count()));
        Assert.Equal(200, sets.Grounding.Train.Count);
    }

    [Fact]
    public void Train_and_test_are_disjoint()
    {
        foreach (var ds in new[] { sets.Detection, sets.Ovd, sets.Classification, sets.Grounding })
        {
            var train = ds.Train.Select(s => SyntheticDataset.FingerprintOf([s])).ToHashSet();
            Assert.DoesNotContain(ds.Test, s => train.Contains(SyntheticDataset.FingerprintOf([s])));
        }
        Assert.Equal(sets.All.Count(), sets.All.Select(s => s.Id).Distinct().Count());
    }

    [Fact]
    public void Open_vocabulary_training_never_shows_a_novel_category()
    {
        var m = sets.Ovd.Manifest;
        Assert.Empty(m.BaseCategories.Intersect(m.NovelCategories));
        Assert.All(sets.Ovd.Train, s =>
        {
            Assert.Equal(CategoryGroup.Base, s.Group);
            Assert.All(s.Objects, o => Assert.Contains(o.Category, m.BaseCategories));
        });
        Assert.All(sets.Ovd.Test, s => { Assert.Equal(CategoryGroup.Novel, s.Group); Assert.Contains(s.Category, m.NovelCategories); });
        Assert.Equal(m.BaseCategories.ToHashSet(), sets.Ovd.Train.Select(s => s.Category).ToHashSet());
        Assert.Equal(m.NovelCategories.ToHashSet(), sets.Ovd.Test.Select(s => s.Category).ToHashSet());
    }

    [Fact]
    public void Few_shot_detection_queries_novel_categories_among_distractors()
    {
        var ds = sets.Detection;
        Assert.All(ds.Train.Concat(ds.Test), s =>
        {
            Assert.Equal(CategoryGroup.Novel, s.Group);
            Assert.Equal(Prompts.Detection(s.Category), s.Problem);
            Assert.InRange(s.Boxes.Count, 1, 3);
            Assert.Equal(s.Boxes.ToHashSet(), s.Objects.Where(o => o.Category == s.Category).Select(o => o.Box).ToHashSet());
        });
        // Most images carry distractors, often sharing the target's colour or shape.
        var all = ds.Train.Concat(ds.Test).ToList();
        Assert.True(all.Count(s => s.Objects.Count > s.Boxes.Count) > all.Count * 0.9);
        Assert.Contains(all, s => s.Objects.Any(o => o.Category != s.Category && (o.Category.Split(' ')[0] == s.Category.Split(' ')[0] || o.Category.Split(' ')[1] == s.Category.Split(' ')[1])));
    }

    [Fact]
    public void Every_solution_parses_back_to_the_ground_truth_boxes()
    {
        foreach (var s in sets.All)
        {
            Assert.Equal(s.Boxes.Select(b => b.ToQwen1000(s.Width, s.Height)), s.Boxes1000);
            switch (s.Task)
            {
                case VisualTask.Detection:
                    var m = Regex.Match(s.Solution, @"^<answer>\[(.*)\]</answer>$");
                    Assert.True(m.Success, s.Solution);
                    var boxes = Regex.Matches(m.Groups[1].Value, @"\{'Position': \[(\d+), (\d+), (\d+), (\d+)\], 'Confidence': 1\}")
                        .Select(x => new Qwen1000Box(Int(x, 1), Int(x, 2), Int(x, 3), Int(x, 4))).ToList();
                    Assert.Equal(s.Boxes1000, boxes);
                    Assert.Equal(m.Groups[1].Value, string.Join(", ", boxes.Select(b => $"{{'Position': [{b.X1}, {b.Y1}, {b.X2}, {b.Y2}], 'Confidence': 1}}")));
                    break;
                case VisualTask.Grounding:
                    var g = Regex.Match(s.Solution, @"^<answer> \((\d+),(\d+)\),\((\d+),(\d+)\) </answer>$");
                    Assert.True(g.Success, s.Solution);
                    Assert.Equal([new Qwen1000Box(Int(g, 1), Int(g, 2), Int(g, 3), Int(g, 4))], s.Boxes1000);
                    break;
                default:
                    Assert.Equal($"<answer>{s.Category}</answer>", s.Solution);
                    Assert.Empty(s.Boxes);
                    break;
            }
        }
        static int Int(Match m, int i) => int.Parse(m.Groups[i].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Boxes_lie_inside_the_image_and_objects_never_overlap()
    {
        foreach (var s in sets.All)
        {
            foreach (var o in s.Objects)
            {
                Assert.True(o.Box.X1 >= 0 && o.Box.Y1 >= 0 && o.Box.X2 <= s.Width && o.Box.Y2 <= s.Height && o.Box.Width >= 8 && o.Box.Height >= 8, $"{s.Id}: {o.Box}");
            }
            foreach (var b in s.Boxes1000) Assert.True(0 <= b.X1 && b.X1 < b.X2 && b.X2 <= 1000 && 0 <= b.Y1 && b.Y1 < b.Y2 && b.Y2 <= 1000, $"{s.Id}: {b}");
            for (var i = 0; i < s.Objects.Count; i++)
                for (var j = i + 1; j < s.Objects.Count; j++)
                    Assert.False(s.Objects[i].Box.Inflate(1).Intersects(s.Objects[j].Box), $"{s.Id}: {s.Objects[i]} touches {s.Objects[j]}");
        }
    }

    [Fact]
    public void Objects_are_painted_in_their_colour()
    {
        // Without faded objects: a faded one is blended with the background on purpose (SceneSpec.FadedShare).
        var m = SyntheticDatasets.Manifest("shapes-detection");
        var clear = SyntheticDataset.Generate(m with { Scene = m.Scene with { FadedShare = 0 } }, DatasetSplit.Test);
        foreach (var s in clear.Concat(sets.Grounding.Test))
            foreach (var o in s.Objects)
            {
                var colour = o.Category.Split(' ')[0];
                var want = ShapeVocabulary.ColourOf(colour);
                int near = 0;
                for (var y = o.Box.Y1; y < o.Box.Y2; y++)
                    for (var x = o.Box.X1; x < o.Box.X2; x++)
                    {
                        if (Math.Abs(s.Image[y, x, 0] - want.R) + Math.Abs(s.Image[y, x, 1] - want.G) + Math.Abs(s.Image[y, x, 2] - want.B) <= 60) near++;
                    }
                Assert.True(near >= 0.3 * o.Box.Area, $"{s.Id}: {o.Category} has {near} of {o.Box.Area} pixels in its colour");
            }
    }

    [Fact]
    public void Grounding_instructions_single_out_exactly_one_object()
    {
        var relations = new HashSet<string>();
        foreach (var s in sets.Grounding.Train.Concat(sets.Grounding.Test))
        {
            var relation = s.Metadata["relation"];
            relations.Add(relation);
            Assert.Equal(Prompts.Grounding(s.Metadata["instruction"]), s.Problem);
            var target = Assert.Single(s.Objects, o => o.Box == s.Boxes[0]);
            Assert.Equal(s.Category, target.Category);
            var others = s.Objects.Where(o => o != target).ToList();
            switch (relation)
            {
                case "left" or "right" or "above" or "below":
                    var refName = s.Metadata["reference"];
                    var r = Assert.Single(s.Objects, o => o.Category == refName).Box;
                    Assert.NotEqual(refName, target.Category);
                    Func<PixelBox, double> axis = relation is "left" or "right" ? b => b.CenterX : b => b.CenterY;
                    double sign = relation is "left" or "above" ? -1 : 1;       // target lies on this side of the reference
                    Assert.True(relation switch
                    {
                        "left" => target.Box.X2 <= r.X1, "right" => target.Box.X1 >= r.X2,
                        "above" => target.Box.Y2 <= r.Y1, _ => target.Box.Y1 >= r.Y2,
                    }, $"{s.Id}: target {target.Box} not {relation} of {r}");
                    var onSide = others.Where(o => o.Box != r && sign * (axis(o.Box) - axis(r)) > 0).ToList();
                    Assert.True(onSide.Count == 0, $"{s.Id}: {string.Join(", ", onSide)} also {relation} of the {refName}");
                    break;
                default:
                    var parts = relation.Split('-');
                    var attr = s.Metadata["reference"];
                    bool Shares(SceneObject o) => o.Category.Split(' ')[parts[1] == "colour" ? 0 : 1] == attr;
                    Assert.True(Shares(target), s.Id);
                    var rivals = others.Where(Shares).ToList();
                    Assert.NotEmpty(rivals);
                    foreach (var o in rivals)
                        Assert.True(parts[0] == "largest" ? target.Box.Area >= 1.4 * o.Box.Area : o.Box.Area >= 1.4 * target.Box.Area,
                            $"{s.Id}: {s.Metadata["instruction"]} target {target.Box} vs {o}");
                    break;
            }
        }
        Assert.Equal(8, relations.Count);
    }

    [Fact]
    public void Classification_classes_are_not_substrings_of_each_other()
    {
        var names = sets.Classification.Manifest.BaseCategories;
        foreach (var a in names)
            foreach (var b in names.Where(b => b != a))
                Assert.False(VisualRft.Evaluation.ClassificationMetrics.IsMatch(a, b), $"'{a}' matches '{b}' under the paper's substring rule");
        Assert.All(sets.Classification.Train, s => { Assert.Equal(Prompts.Classification(), s.Problem); Assert.Contains(' ', s.Category); });
    }

    [Fact]
    public void Image_size_is_configurable_in_multiples_of_28()
    {
        var d = SyntheticDatasets.Load("shapes-grounding", shots: 4, testSize: 1, imageSize: 224);
        Assert.All(d.Train, s => Assert.Equal((224, 224), (s.Width, s.Height)));
        Assert.All(sets.Detection.Train, s => Assert.Equal((112, 112), (s.Width, s.Height)));
    }
}
