using System.Text.RegularExpressions;
using VisualRft.IO;

namespace VisualRft.Data;

/// <summary>Which of the manifest's category lists a split draws from.</summary>
public enum CategorySelection { None, Base, Novel, All }

/// <summary>
/// One split: the categories it queries and its size — images per category for detection and classification (the "shots"
/// of the training split), total images for grounding.
/// </summary>
public sealed record SplitSpec(CategorySelection Categories, int Size);

/// <summary>
/// How a detection scene is composed (manifest key <c>scene</c>, optional): targets of the queried category and distractors
/// per image (inclusive ranges), the object side as a fraction of the image side, the share of scenes with more than one
/// target (key <c>multiTarget</c>; of those, three in four have two targets) and the share of objects drawn faded (key
/// <c>faded</c>: blended towards the background, the analogue of a small, blurred or occluded object in a photo). The
/// defaults are the few-shot scenes; the tiny model's pre-training uses fewer multi-target scenes, so that it under-reports
/// instances as Qwen2-VL does (TinyPretrainOptions).
/// </summary>
public sealed record SceneSpec(int MinTargets = 1, int MaxTargets = 3, int MinDistractors = 1, int MaxDistractors = 2,
    double MinObjectSide = 0.24, double MaxObjectSide = 0.40, double MultiTargetShare = 0.4, double FadedShare = 0.3)
{
    public static readonly SceneSpec Default = new();
}

/// <summary>
/// How a data set writes its solutions (manifest key <c>solutions</c>, optional). The paper's data sets give every box
/// confidence 1 (issue #115) and SFT targets a <c>&lt;think&gt;</c> sentence; the tiny model's pre-training corpus stands for
/// what Qwen2-VL learned before Visual-RFT: confidences that carry information (key <c>confidence</c>: "visibility" = 1 for
/// a clear object, its fade level for a faded one) and some answers without the thinking block (key <c>withoutThink</c>:
/// their share), the format slips a verifiable format reward then fixes.
/// </summary>
public sealed record SolutionStyle(bool VisibilityConfidence = false, double WithoutThinkShare = 0)
{
    public static readonly SolutionStyle Paper = new();
}

/// <summary>
/// A synthetic dataset's description, read from <c>data-manifests/{name}.json</c>. Every key is required except
/// <c>shotOptions</c>; unknown keys and values are errors that name the file and the key.
/// </summary>
/// <param name="Name">Lower-case id, also the file name without ".json".</param>
/// <param name="Description">What the dataset mirrors in the paper, for dataset cards.</param>
/// <param name="Task">Manifest key <c>task</c>: detection | classification | grounding | open-vocabulary-detection (the paper's four
/// settings, visual-rft-spec.md §5, §7); open-vocabulary detection is <see cref="VisualTask.Detection"/> with
/// <see cref="OpenVocabulary"/> set.</param>
/// <param name="OpenVocabulary">Trains on the base categories and tests on the novel ones (OVD, spec §5.2).</param>
/// <param name="Generator">"shapes-detection" (detection, open-vocabulary detection), "shapes-classification" or "shapes-grounding".</param>
/// <param name="PromptTemplate">"visual-rft-detection" (§3.2), "visual-rft-classification" (§3.3) or "lisa-grounding" (§3.4).</param>
/// <param name="Seed">Root of every sample's random stream.</param>
/// <param name="ImageSize">Square image side in pixels, a multiple of 28 (one Qwen2-VL visual token per 28×28 pixels).</param>
/// <param name="BaseCategories">Manifest key categories.base: seen in pre-training (open-vocabulary: the training categories).</param>
/// <param name="NovelCategories">Manifest key categories.novel: disjoint from the base categories.</param>
/// <param name="ShotOptions">The shot counts the paper reports for this setting (documentation for cards and sweeps).</param>
/// <param name="Train">The training split.</param>
/// <param name="Test">The held-out split.</param>
/// <param name="Scene">Detection scene composition (key <c>scene</c>, optional; <see cref="SceneSpec.Default"/>).</param>
/// <param name="Solutions">How solutions are written (key <c>solutions</c>, optional; <see cref="SolutionStyle.Paper"/>).</param>
/// <param name="Relations">Grounding relations drawn (key <c>relations</c>, optional; default every one of the generator's).</param>
/// <param name="Source">Where the manifest came from (file path or "embedded:{name}"), used in error messages.</param>
public sealed record DatasetManifest(
    string Name,
    string Description,
    VisualTask Task,
    bool OpenVocabulary,
    string Generator,
    string PromptTemplate,
    int Seed,
    int ImageSize,
    IReadOnlyList<string> BaseCategories,
    IReadOnlyList<string> NovelCategories,
    IReadOnlyList<int> ShotOptions,
    SplitSpec Train,
    SplitSpec Test,
    SceneSpec Scene,
    SolutionStyle Solutions,
    IReadOnlyList<string> Relations,
    string Source)
{
    public const int MinImageSize = 56, MaxImageSize = 448;
    /// <summary>Manifests are small; a larger file is refused before it is read.</summary>
    public const int MaxFileBytes = 1 << 20;
    /// <summary>Memory a generated sample takes besides its pixels (image object, prompt and solution texts).</summary>
    public const int SampleOverheadBytes = 4096;

    static readonly string[] Keys =
        ["name", "description", "task", "generator", "promptTemplate", "seed", "imageSize", "categories", "shotOptions", "train", "test", "scene", "solutions", "relations"];

    // The tasks' own names, and open-vocabulary detection: detection that trains on base and tests on novel categories.
    static readonly Dictionary<string, (VisualTask Task, bool OpenVocabulary)> Tasks = new(
        [.. System.Enum.GetValues<VisualTask>().Select(t => KeyValuePair.Create(EnumNames.Of(t), (t, false))),
         KeyValuePair.Create("open-vocabulary-detection", (VisualTask.Detection, true))]);

    static readonly Dictionary<string, CategorySelection> Selections = new()
    {
        ["base"] = CategorySelection.Base, ["novel"] = CategorySelection.Novel, ["all"] = CategorySelection.All,
    };

    /// <summary>The category list a split draws from, in manifest order.</summary>
    public IReadOnlyList<string> CategoriesOf(CategorySelection selection) => selection switch
    {
        CategorySelection.Base => BaseCategories,
        CategorySelection.Novel => NovelCategories,
        CategorySelection.All => [.. BaseCategories, .. NovelCategories],
        _ => [],
    };

    /// <summary>Images a split generates: its size per category (detection, classification) or its size (grounding).</summary>
    public long ImageCount(SplitSpec split) =>
        Task == VisualTask.Grounding ? split.Size : (long)split.Size * CategoriesOf(split.Categories).Count;

    /// <summary>Approximate memory one generated sample holds (3 bytes a pixel plus <see cref="SampleOverheadBytes"/>).</summary>
    public long BytesPerImage => 3L * ImageSize * ImageSize + SampleOverheadBytes;

    /// <summary>Approximate memory of the generated train and test splits together.</summary>
    public long EstimatedBytes => (ImageCount(Train) + ImageCount(Test)) * BytesPerImage;

    /// <summary>The largest size <paramref name="split"/> can be given, the other split keeping its size, for the data set
    /// to fit in <see cref="MemoryBudget.PlanningBytes"/>.</summary>
    public int MaxSize(DatasetSplit split)
    {
        var (own, other) = split == DatasetSplit.Train ? (Train, Test) : (Test, Train);
        long perUnit = BytesPerImage * (Task == VisualTask.Grounding ? 1 : Math.Max(1, CategoriesOf(own.Categories).Count));
        long left = MemoryBudget.PlanningBytes - ImageCount(other) * BytesPerImage;
        return (int)Math.Clamp(left / perUnit, 0, int.MaxValue);
    }

    public CategoryGroup GroupOf(string category) =>
        NovelCategories.Contains(category) ? CategoryGroup.Novel : CategoryGroup.Base;

    // Manifests are written by hand: comments are allowed.
    public static DatasetManifest Load(string path) => Parse(JsonFields.Load(path, MaxFileBytes, "dataset manifest", comments: true));

    /// <summary>Parses and validates manifest JSON; <paramref name="source"/> names it in errors.</summary>
    public static DatasetManifest Parse(string json, string source) => Parse(JsonFields.Parse(json, source, comments: true));

    static DatasetManifest Parse(JsonFields root)
    {
        root.OnlyKeys(Keys);
        var task = root.OneOf("task", Tasks);
        var cats = root.Obj("categories");
        cats.OnlyKeys("base", "novel");
        var manifest = new DatasetManifest(
            Name: root.Str("name", nonEmpty: true),
            Description: root.Str("description", nonEmpty: true),
            Task: task.Task,
            OpenVocabulary: task.OpenVocabulary,
            Generator: root.Str("generator", nonEmpty: true),
            PromptTemplate: root.Str("promptTemplate", nonEmpty: true),
            Seed: root.Int("seed"),
            ImageSize: root.Int("imageSize"),
            BaseCategories: cats.Strs("base", nonEmpty: true),
            NovelCategories: cats.Strs("novel", nonEmpty: true),
            ShotOptions: root.Has("shotOptions") ? root.Ints("shotOptions") : [],
            Train: Split(root.Obj("train")),
            Test: Split(root.Obj("test")),
            Scene: root.ObjOrNull("scene") is { } scene ? ParseScene(scene) : SceneSpec.Default,
            Solutions: root.ObjOrNull("solutions") is { } solutions ? ParseSolutions(solutions) : SolutionStyle.Paper,
            Relations: root.Has("relations") ? root.Strs("relations", nonEmpty: true) : GroundingGenerator.Relations,
            Source: root.Source);
        manifest.Validate();
        return manifest;
    }

    /// <summary>A copy with some values replaced, validated again (e.g. a different shot count or seed).</summary>
    public DatasetManifest With(int? shots = null, int? testSize = null, int? seed = null, int? imageSize = null)
    {
        var m = this with
        {
            Train = Train with { Size = shots ?? Train.Size },
            Test = Test with { Size = testSize ?? Test.Size },
            Seed = seed ?? Seed,
            ImageSize = imageSize ?? ImageSize,
        };
        m.Validate();
        return m;
    }

    /// <summary>Checks the cross-key rules; throws <see cref="InvalidDataException"/> naming the source and key.</summary>
    public void Validate()
    {
        if (!Regex.IsMatch(Name, "^[a-z0-9][a-z0-9-]*$")) throw JsonFields.Error(Source, "name", $"must be lower-case letters, digits and '-', got '{Q(Name)}'");
        if (Seed < 0) throw JsonFields.Error(Source, "seed", $"must be a non-negative integer, got {Seed}");
        if (ImageSize < MinImageSize || ImageSize > MaxImageSize || ImageSize % 28 != 0)
            throw JsonFields.Error(Source, "imageSize", $"must be a multiple of 28 between {MinImageSize} and {MaxImageSize}, got {ImageSize}");

        var (generator, template) = Task switch
        {
            VisualTask.Classification => ("shapes-classification", Prompts.ClassificationTemplateId),
            VisualTask.Grounding => ("shapes-grounding", Prompts.GroundingTemplateId),
            _ => ("shapes-detection", Prompts.DetectionTemplateId),
        };
        if (Generator != generator) throw JsonFields.Error(Source, "generator", $"task '{TaskName}' needs generator '{generator}', got '{Q(Generator)}'");
        if (PromptTemplate != template) throw JsonFields.Error(Source, "promptTemplate", $"task '{TaskName}' needs prompt template '{template}', got '{Q(PromptTemplate)}'");

        var known = Task == VisualTask.Classification ? ClassificationGenerator.ClassNames : ShapeVocabulary.Categories;
        foreach (var (key, list) in new[] { ("categories.base", BaseCategories), ("categories.novel", NovelCategories) })
        {
            foreach (var c in list)
                if (!known.Contains(c)) throw JsonFields.Error(Source, key, $"unknown category '{Q(c)}' for generator '{Generator}' (known: {string.Join(", ", known)})");
            var dup = list.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1);
            if (dup != null) throw JsonFields.Error(Source, key, $"category '{Q(dup.Key)}' is listed twice");
        }
        var both = BaseCategories.Intersect(NovelCategories).FirstOrDefault();
        if (both != null) throw JsonFields.Error(Source, "categories", $"'{Q(both)}' is both base and novel; the sets must be disjoint");
        var withDistractors = Scene.MaxDistractors > 0;
        if (BaseCategories.Count + NovelCategories.Count < (withDistractors ? 2 : 1))
            throw JsonFields.Error(Source, "categories", withDistractors ? "at least two categories are needed (targets and distractors)" : "at least one category is needed");
        foreach (var s in ShotOptions)
            if (s < 1) throw JsonFields.Error(Source, "shotOptions", $"shot counts must be positive, got {s}");

        if (Scene != SceneSpec.Default)
        {
            if (Generator != "shapes-detection") throw JsonFields.Error(Source, "scene", $"only detection scenes can be composed, not '{Generator}'");
            if (Scene.MinTargets < 1 || Scene.MaxTargets > 3 || Scene.MinTargets > Scene.MaxTargets)
                throw JsonFields.Error(Source, "scene.targets", $"must be a range within [1, 3], got [{Scene.MinTargets}, {Scene.MaxTargets}]");
            if (Scene.MinDistractors < 0 || Scene.MaxDistractors > 2 || Scene.MinDistractors > Scene.MaxDistractors)
                throw JsonFields.Error(Source, "scene.distractors", $"must be a range within [0, 2], got [{Scene.MinDistractors}, {Scene.MaxDistractors}]");
            if (!(Scene.MinObjectSide >= 0.1 && Scene.MaxObjectSide <= 0.8 && Scene.MinObjectSide <= Scene.MaxObjectSide))
                throw JsonFields.Error(Source, "scene.objectSide", $"must be a range within [0.1, 0.8], got [{Scene.MinObjectSide}, {Scene.MaxObjectSide}]");
            if (!(Scene.MultiTargetShare is >= 0 and <= 1)) throw JsonFields.Error(Source, "scene.multiTarget", $"must be a share in [0, 1], got {Scene.MultiTargetShare}");
            if (!(Scene.FadedShare is >= 0 and <= 1)) throw JsonFields.Error(Source, "scene.faded", $"must be a share in [0, 1], got {Scene.FadedShare}");
        }
        if (Solutions != SolutionStyle.Paper)
        {
            if (Task != VisualTask.Detection) throw JsonFields.Error(Source, "solutions", $"only detection solutions have a style, not '{TaskName}'");
            if (!(Solutions.WithoutThinkShare is >= 0 and <= 1)) throw JsonFields.Error(Source, "solutions.withoutThink", $"must be a share in [0, 1], got {Solutions.WithoutThinkShare}");
        }
        if (Relations.Count == 0) throw JsonFields.Error(Source, "relations", "must list at least one relation");
        foreach (var r in Relations)
            if (!GroundingGenerator.Relations.Contains(r)) throw JsonFields.Error(Source, "relations", $"unknown relation '{Q(r)}' (known: {string.Join(", ", GroundingGenerator.Relations)})");
        if (Task != VisualTask.Grounding && !Relations.SequenceEqual(GroundingGenerator.Relations))
            throw JsonFields.Error(Source, "relations", $"only grounding draws relations, not '{TaskName}'");
        CheckSplit("train", Train);
        CheckSplit("test", Test);
        if (EstimatedBytes > MemoryBudget.PlanningBytes)
        {
            var (key, split) = ImageCount(Train) >= ImageCount(Test) ? ("train.size", Train) : ("test.size", Test);
            throw JsonFields.Error(Source, key, $"{split.Size:N0} makes {ImageCount(Train) + ImageCount(Test):N0} images of {ImageSize}x{ImageSize} "
                + $"(~{MemoryBudget.Format(EstimatedBytes)}), more than the {MemoryBudget.Format(MemoryBudget.PlanningBytes)} a data set may take here "
                + $"(half the memory); at most {MaxSize(split == Train ? DatasetSplit.Train : DatasetSplit.Test):N0}");
        }
        if (OpenVocabulary && (Train.Categories != CategorySelection.Base || Test.Categories != CategorySelection.Novel))
            throw JsonFields.Error(Source, "train.categories", "open-vocabulary detection trains on 'base' and tests on 'novel' (visual-rft-spec.md §5.2)");
    }

    void CheckSplit(string key, SplitSpec split)
    {
        if (split.Size < 1) throw JsonFields.Error(Source, key + ".size", $"must be a positive integer, got {split.Size}");
        if (Task == VisualTask.Grounding)
        {
            if (split.Categories != CategorySelection.None)
                throw JsonFields.Error(Source, key + ".categories", "grounding splits draw scenes from all categories; remove this key");
            return;
        }
        if (split.Categories == CategorySelection.None) throw JsonFields.Error(Source, key + ".categories", "is required (base, novel or all)");
        if (CategoriesOf(split.Categories).Count == 0) throw JsonFields.Error(Source, key + ".categories", $"selects '{split.Categories.ToString().ToLowerInvariant()}', which is empty");
    }

    string TaskName => Tasks.First(kv => kv.Value == (Task, OpenVocabulary)).Key;

    static SplitSpec Split(JsonFields o)
    {
        o.OnlyKeys("categories", "size");
        return new SplitSpec(o.Has("categories") ? o.OneOf("categories", Selections) : CategorySelection.None, o.Int("size"));
    }

    static SceneSpec ParseScene(JsonFields o)
    {
        o.OnlyKeys("targets", "distractors", "objectSide", "multiTarget", "faded");
        var d = SceneSpec.Default;
        var targets = o.Has("targets") ? Pair(o, "targets", o.Ints("targets")) : (d.MinTargets, d.MaxTargets);
        var distractors = o.Has("distractors") ? Pair(o, "distractors", o.Ints("distractors")) : (d.MinDistractors, d.MaxDistractors);
        var side = o.Has("objectSide") ? Pair(o, "objectSide", o.Doubles("objectSide")) : (d.MinObjectSide, d.MaxObjectSide);
        return new SceneSpec(targets.Item1, targets.Item2, distractors.Item1, distractors.Item2, side.Item1, side.Item2,
            o.Double("multiTarget", d.MultiTargetShare), o.Double("faded", d.FadedShare));
    }

    static readonly Dictionary<string, bool> VisibilityConfidence = new() { ["one"] = false, ["visibility"] = true };

    static SolutionStyle ParseSolutions(JsonFields o)
    {
        o.OnlyKeys("confidence", "withoutThink");
        return new SolutionStyle(o.Has("confidence") && o.OneOf("confidence", VisibilityConfidence), o.Double("withoutThink", 0));
    }

    static (T, T) Pair<T>(JsonFields o, string key, IReadOnlyList<T> list) =>
        list.Count == 2 ? (list[0], list[1]) : throw o.Error(key, $"must be [min, max], got {list.Count} values");

    /// <summary>A manifest value quoted in a message.</summary>
    static string Q(string value) => Excerpt.Of(value, 80);
}
