using VisualRft.Data;

namespace VisualRft.Tests.Data;

public class ManifestTests
{
    static readonly string Folder = Path.Combine(Golden.RepoRoot, SyntheticDatasets.FolderName);
    static readonly string[] Expected = ["shapes-classification", "shapes-detection", "shapes-first-look", "shapes-grounding", "shapes-ovd",
        "shapes-pretrain", "shapes-pretrain-classification", "shapes-pretrain-grounding", "shapes-single-object"];

    [Fact]
    public void Every_repository_manifest_is_embedded_identically()
    {
        Assert.Equal(Expected, SyntheticDatasets.Names);
        foreach (var name in Expected)
        {
            var file = DatasetManifest.Load(Path.Combine(Folder, name + ".json"));
            var embedded = SyntheticDatasets.Embedded(name);
            Assert.Equal(name, file.Name);
            Assert.Equal(file with { Source = "" }, embedded with { Source = "" }, new ManifestComparer());
        }
    }

    [Fact]
    public void Lookup_prefers_the_folder_then_the_embedded_copy()
    {
        Assert.Equal(Path.Combine(Folder, "shapes-detection.json"), SyntheticDatasets.Manifest("shapes-detection", Golden.RepoRoot).Source);
        var elsewhere = Directory.CreateTempSubdirectory("vrft-manifests").FullName;
        try
        {
            Assert.Equal("embedded:shapes-detection", SyntheticDatasets.Manifest("shapes-detection", elsewhere).Source);
            var e = Assert.Throws<ArgumentException>(() => SyntheticDatasets.Manifest("no-such-set", elsewhere));
            Assert.Contains("shapes-detection", e.Message);
        }
        finally { Directory.Delete(elsewhere, true); }
    }

    [Fact]
    public void A_manifest_path_that_is_not_a_readable_file_is_an_error_not_a_fallback()
    {
        // issue 19: a folder in the manifest's place fell back to the embedded copy, and vrft quickstart exited 0
        var elsewhere = Directory.CreateTempSubdirectory("vrft-manifests").FullName;
        try
        {
            var folder = Path.Combine(elsewhere, SyntheticDatasets.FolderName);
            Directory.CreateDirectory(Path.Combine(folder, "shapes-detection.json"));
            var e = Assert.Throws<InvalidDataException>(() => SyntheticDatasets.Manifest("shapes-detection", elsewhere));
            Assert.Contains(Path.Combine(folder, "shapes-detection.json") + ": is a directory", e.Message);
            File.CreateSymbolicLink(Path.Combine(folder, "shapes-grounding.json"), Path.Combine(elsewhere, "gone.json"));
            Assert.Contains("shapes-grounding.json", Assert.Throws<FileNotFoundException>(() => SyntheticDatasets.Manifest("shapes-grounding", elsewhere)).Message);
            File.CreateSymbolicLink(Path.Combine(folder, "shapes-ovd.json"), "/dev/zero");
            Assert.Contains("not a regular file", Assert.Throws<InvalidDataException>(() => SyntheticDatasets.Manifest("shapes-ovd", elsewhere)).Message);
            // a name with no file in the folder still comes from the package
            Assert.Equal("embedded:shapes-classification", SyntheticDatasets.Manifest("shapes-classification", elsewhere).Source);
        }
        finally { Directory.Delete(elsewhere, true); }
    }

    [Fact]
    public void Manifests_describe_the_papers_settings()
    {
        var det = SyntheticDatasets.Embedded("shapes-detection");
        Assert.Equal(VisualTask.Detection, det.Task);
        Assert.Equal([1, 2, 4, 8, 16], det.ShotOptions);
        Assert.Equal(8, det.NovelCategories.Count);                 // like the paper's 8 COCO few-shot classes
        Assert.Equal(CategorySelection.Novel, det.Train.Categories);
        var ovd = SyntheticDatasets.Embedded("shapes-ovd");
        Assert.Equal((CategorySelection.Base, CategorySelection.Novel), (ovd.Train.Categories, ovd.Test.Categories));
        Assert.Empty(ovd.BaseCategories.Intersect(ovd.NovelCategories));
        Assert.All(Expected.Select(SyntheticDatasets.Embedded), m => Assert.Equal(0, m.ImageSize % 28));
    }

    const string Valid = """
        { "name": "t", "description": "d", "task": "detection", "generator": "shapes-detection",
          "promptTemplate": "visual-rft-detection", "seed": 1, "imageSize": 112,
          "categories": { "base": ["red circle", "blue square"], "novel": ["green star"] },
          "train": { "categories": "novel", "size": 2 }, "test": { "categories": "novel", "size": 3 } }
        """;

    [Theory]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"colour\": 3,", "key 'colour' unknown key")]
    [InlineData("\"size\": 2 }", "\"size\": 2, \"shots\": 4 }", "key 'train.shots' unknown key")]
    [InlineData("\"task\": \"detection\"", "\"task\": \"segmentation\"", "key 'task' unknown value 'segmentation'")]
    [InlineData("\"imageSize\": 112", "\"imageSize\": 100", "key 'imageSize' must be a multiple of 28")]
    [InlineData("\"imageSize\": 112", "\"imageSize\": \"112\"", "key 'imageSize' must be an integer")]
    [InlineData("\"green star\"]", "\"red circle\"]", "'red circle' is both base and novel")]
    [InlineData("\"green star\"]", "\"violet star\"]", "key 'categories.novel' unknown category 'violet star'")]
    [InlineData("\"generator\": \"shapes-detection\"", "\"generator\": \"shapes-grounding\"", "key 'generator' task 'detection' needs generator 'shapes-detection'")]
    [InlineData("\"size\": 3 }", "\"size\": 0 }", "key 'test.size' must be a positive integer")]
    [InlineData("\"categories\": \"novel\", \"size\": 2", "\"size\": 2", "key 'train.categories' is required")]
    [InlineData("\"seed\": 1,", "", "key 'seed' is missing")]
    [InlineData("\"task\": \"detection\"", "\"task\": \"open-vocabulary-detection\"", "trains on 'base' and tests on 'novel'")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"targets\": [2, 1] },", "key 'scene.targets' must be a range within [1, 3]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"faded\": 1.5 },", "key 'scene.faded' must be a share in [0, 1]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"multiTarget\": \"all\" },", "key 'scene.multiTarget' must be a number")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"solutions\": { \"confidence\": \"random\" },", "key 'solutions.confidence' unknown value 'random' (known: one, visibility)")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"solutions\": { \"withoutThink\": -0.1 },", "key 'solutions.withoutThink' must be a share in [0, 1]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"relations\": [\"left\"],", "key 'relations' only grounding draws relations")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"solutions\": { \"tone\": 1 },", "key 'solutions.tone' unknown key")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"distractors\": [0, 3] },", "key 'scene.distractors' must be a range within [0, 2]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"objectSide\": [0.4] },", "key 'scene.objectSide' must be [min, max]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"objectSide\": [0.5, 0.9] },", "key 'scene.objectSide' must be a range within [0.1, 0.8]")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"size\": 3 },", "key 'scene.size' unknown key")]
    [InlineData("\"size\": 2 }", "\"size\": 2000000000 }", "key 'train.size' 2,000,000,000 makes 2,000,000,003 images of 112x112")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"seed\": 2,", "key 'seed' is given twice")]
    [InlineData("\"size\": 3 }", "\"size\": 3, \"size\": 4 }", "key 'test.size' is given twice")]
    [InlineData("\"seed\": 1,", "\"seed\": 1.5,", "key 'seed' must be an integer, got 1.5")]
    [InlineData("\"seed\": 1,", "\"seed\": null,", "key 'seed' is null")]
    [InlineData("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"targets\": [1, \"two\"] },", "key 'scene.targets[1]' must be an integer, got \"two\"")]
    public void Invalid_manifests_name_the_file_and_the_key(string from, string to, string message)
    {
        Assert.NotNull(DatasetManifest.Parse(Valid, "ok.json"));
        var e = Assert.Throws<InvalidDataException>(() => DatasetManifest.Parse(Valid.Replace(from, to), "bad.json"));
        Assert.StartsWith("bad.json: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Overrides_are_validated()
    {
        var m = DatasetManifest.Parse(Valid, "ok.json");
        Assert.Equal(16, m.With(shots: 16).Train.Size);
        Assert.Contains("train.size", Assert.Throws<InvalidDataException>(() => m.With(shots: 0)).Message);
        Assert.Contains("imageSize", Assert.Throws<InvalidDataException>(() => m.With(imageSize: 120)).Message);
        Assert.Throws<FileNotFoundException>(() => DatasetManifest.Load(Path.Combine(Folder, "missing.json")));
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => DatasetManifest.Parse("{", "x.json")).Message);
    }

    [Fact]
    public void Huge_files_and_values_give_short_errors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vrft-manifest-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, Valid.Replace("\"d\"", "\"" + new string('d', 2 << 20) + "\""));
            Assert.Contains("more than 1,048,576 bytes", Assert.Throws<InvalidDataException>(() => DatasetManifest.Load(path)).Message);
        }
        finally { File.Delete(path); }
        var e = Assert.Throws<InvalidDataException>(() => DatasetManifest.Parse(Valid.Replace("\"green star\"]", "\"" + new string('v', 100_000) + "\"]"), "bad.json"));
        Assert.True(e.Message.Length < 1000, $"{e.Message.Length} characters");
    }

    [Fact]
    public void Comments_whole_floats_and_null_optional_keys_read_as_the_reader_defines()
    {
        var m = DatasetManifest.Parse(Valid.Replace("\"imageSize\": 112", "\"imageSize\": 112.0 /* 4 x 28 */")
            .Replace("\"seed\": 1,", "\"seed\": 1, \"scene\": null, \"shotOptions\": null, // unset\n"), "ok.json");
        Assert.Equal(112, m.ImageSize);
        Assert.Equal(SceneSpec.Default, m.Scene);
        Assert.Empty(m.ShotOptions);
    }

    [Fact]
    public void A_scene_key_composes_detection_images()
    {
        var m = DatasetManifest.Parse(Valid.Replace("\"seed\": 1,", "\"seed\": 1, \"scene\": { \"targets\": [1, 1], \"distractors\": [0, 0], \"objectSide\": [0.5, 0.6] },"), "scene.json");
        Assert.Equal(new SceneSpec(1, 1, 0, 0, 0.5, 0.6), m.Scene);
        Assert.Equal(SceneSpec.Default, DatasetManifest.Parse(Valid, "ok.json").Scene);
        var data = SyntheticDataset.FromManifest(m, shots: 6);
        Assert.All(data.Train, s =>
        {
            var box = Assert.Single(s.Boxes);
            Assert.Single(s.Objects);                                         // no distractor
            Assert.InRange(Math.Max(box.Width, box.Height), 0.5 * 112 * 0.85 - 2, 0.6 * 112 * 1.15 + 1);
        });
    }

    /// <summary>Records with list members compare lists by reference; compare their contents.</summary>
    sealed class ManifestComparer : IEqualityComparer<DatasetManifest>
    {
        public bool Equals(DatasetManifest? a, DatasetManifest? b) =>
            a!.ToString() == b!.ToString() && a.BaseCategories.SequenceEqual(b.BaseCategories)
            && a.NovelCategories.SequenceEqual(b.NovelCategories) && a.ShotOptions.SequenceEqual(b.ShotOptions) && a.Relations.SequenceEqual(b.Relations);
        public int GetHashCode(DatasetManifest m) => m.Name.GetHashCode();
    }
}
