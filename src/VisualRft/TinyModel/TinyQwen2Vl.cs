using System.Security.Cryptography;
using VisualRft.Data;
using VisualRft.Imaging;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Text;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.TinyModel;

/// <summary>One data set of a pre-training stage: its training split's base categories, <paramref name="Images"/> per category (grounding: in all).</summary>
public sealed record PretrainData(string Dataset, int Images);

/// <summary>
/// One stage of the tiny model's pre-training: SFT on a mixture of data sets (their training splits shuffled together),
/// with its own warm-up and linear decay.
/// </summary>
/// <param name="Data">The data sets; a batch draws from their union, so each weighs by its image count.</param>
/// <param name="Steps">SFT steps of 16 samples.</param>
/// <param name="LearningRate">Peak AdamW learning rate.</param>
public sealed record PretrainStage(IReadOnlyList<PretrainData> Data, int Steps, double LearningRate)
{
    public string Name => string.Join(" + ", Data.Select(d => d.Dataset));
}

/// <summary>How the tiny base model is made (<c>vrft pretrain-tiny</c>); the defaults made the shipped weights.</summary>
public sealed record TinyPretrainOptions
{
    /// <summary>Target size of the byte-level BPE vocabulary (256 bytes + merges + the 7 Qwen special tokens).</summary>
    public int VocabSize { get; init; } = 768;
    public int Hidden { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int VisionWidth { get; init; } = 64;
    public int VisionDepth { get; init; } = 2;

    /// <summary>
    /// The curriculum. Why stages: trained on the few-shot scenes alone, the model learned to count and to name objects from
    /// the image but wrote its boxes from the prompt alone (coordinate NLL the same with swapped images, ImageDependence):
    /// where an object is only shows once attention has found the object, and attention only finds it once something reads
    /// positions, a saddle that thousands of steps did not leave. One large object of one category on its own leaves it in
    /// a few hundred steps (measured: coordinate NLL 1.26 vs 1.87 with swapped images after 600 steps); then every
    /// pre-training category alone, then the last stage: scenes with distractors, classification and grounding together —
    /// the analogue of a generalist model (docs/tiny-model.md says what it has and has not seen).
    /// </summary>
    public IReadOnlyList<PretrainStage> Stages { get; init; } =
    [
        new([new("shapes-first-look", 400)], 600, 1.5e-3),
        new([new("shapes-single-object", 100)], 1200, 1e-3),
        new([new("shapes-pretrain", 250), new("shapes-pretrain-classification", 150), new("shapes-pretrain-grounding", 2000)], 3000, 1e-3),
    ];

    public SftOptions Sft { get; init; } = new() { BatchSize = 16, WarmupSteps = 100, WeightDecay = 0.01, Seed = 7 };
    public ulong Seed { get; init; } = 7;
    /// <summary>Seed of the SFT images (null: each manifest's); a continued run draws fresh images with another.</summary>
    public int? DataSeed { get; init; }
}

/// <summary>One pre-training stage as the card lists it.</summary>
public sealed record CardStage(string Name, int Steps, string Data);

/// <summary>
/// What the tiny base model was trained on and what it has never seen (<see cref="TinyQwen2Vl.Card"/>): plain data read
/// from the pre-training options and the manifests, so that the card cannot drift from the model's recipe.
/// </summary>
public sealed record TinyModelCard(string Name, string Summary, IReadOnlyList<CardStage> Stages,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Seen, IReadOnlyDictionary<string, IReadOnlyList<string>> Unseen, IReadOnlyList<string> Failures);

/// <summary>
/// The built-in CPU model: a tiny configuration of the Qwen2-VL architecture (same code as 2B/7B) with a small byte-level
/// vocabulary, pre-trained by supervised fine-tuning on 38 colour + shape categories (every colour and shape word),
/// 13 classification classes and grounding with six relations, and shipped inside the package, so that teaching, tests
/// and the quickstart run offline in minutes (DESIGN.md, "one model family, every size"). The test categories of every
/// table are pairs of known words it never saw labelled: what Visual-RFT then sharpens from a few shots, as the paper's
/// Qwen2-VL-2B already finds the novel objects before training (base mAP 19.6).
/// </summary>
public static class TinyQwen2Vl
{
    const string ResourcePrefix = "VisualRft.TinyModel.";
    static readonly string[] Files = ["config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"];

    /// <summary>True when this build of the package carries the pre-trained weights.</summary>
    public static bool IsAvailable => Files.All(f => typeof(TinyQwen2Vl).Assembly.GetManifestResourceInfo(ResourcePrefix + f) != null);

    /// <summary>Loads the shipped tiny base model (CPU by default).</summary>
    public static VisionLanguagePolicy Pretrained(Device? device = null)
    {
        TorchRuntime.EnsureLoaded();
        return VisionLanguagePolicy.FromPretrained(ExtractedFolder(), device ?? CPU);
    }

    /// <summary>The shipped files, unpacked once into a per-version cache folder (checked by content hash).</summary>
    public static string ExtractedFolder()
    {
        if (!IsAvailable) throw new InvalidOperationException("this build of VisualRft has no tiny model embedded; run `vrft pretrain-tiny` to make one");
        var asm = typeof(TinyQwen2Vl).Assembly;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var blobs = new Dictionary<string, byte[]>();
        foreach (var f in Files)
        {
            using var s = asm.GetManifestResourceStream(ResourcePrefix + f)!;
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            blobs[f] = ms.ToArray();
            sha.AppendData(blobs[f]);
        }
        var folder = Path.Combine(Path.GetTempPath(), "vrft-tiny-" + Convert.ToHexStringLower(sha.GetHashAndReset())[..16]);
        if (Files.All(f => File.Exists(Path.Combine(folder, f)) && new FileInfo(Path.Combine(folder, f)).Length == blobs[f].Length))
            return folder;
        Directory.CreateDirectory(folder);
        foreach (var (f, bytes) in blobs) IO.AtomicFile.Write(Path.Combine(folder, f), fs => fs.Write(bytes));
        return folder;
    }

    /// <summary>The model card of the tiny base model that <paramref name="options"/> make (the defaults: the shipped one).</summary>
    public static TinyModelCard Card(TinyPretrainOptions? options = null)
    {
        options ??= new TinyPretrainOptions();
        var manifests = options.Stages.SelectMany(s => s.Data).Select(d => SyntheticDatasets.Manifest(d.Dataset)).ToList();
        IReadOnlyList<string> Of(VisualTask task) => [.. manifests.Where(m => m.Task == task && !m.OpenVocabulary).SelectMany(m => m.BaseCategories).Distinct()];
        var detection = Of(VisualTask.Detection);
        var few = SyntheticDatasets.Manifest("shapes-detection");
        var ovd = SyntheticDatasets.Manifest("shapes-ovd");
        var relations = manifests.Where(m => m.Task == VisualTask.Grounding).SelectMany(m => m.Relations).Distinct().ToList();
        string Data(PretrainStage s) => string.Join("; ", s.Data.Select(d =>
        {
            var m = SyntheticDatasets.Manifest(d.Dataset);
            return m.Task == VisualTask.Grounding ? $"{d.Dataset}: {d.Images} scenes" : $"{d.Dataset}: {m.BaseCategories.Count} categories × {d.Images} images";
        }));
        return new TinyModelCard(
            "built-in tiny Qwen2-VL",
            $"A {options.Layers}-layer, {options.Hidden}-wide Qwen2-VL (vision tower {options.VisionDepth} blocks × {options.VisionWidth}), vocabulary {options.VocabSize}, "
            + "pre-trained from random weights by SFT on synthetic scenes. It knows every colour and shape word at box level, the classification attributes and six grounding relations; "
            + "every test category of the tables is a pair of known words it never saw labelled.",
            [.. options.Stages.Select(s => new CardStage(s.Name, s.Steps, Data(s)))],
            new Dictionary<string, IReadOnlyList<string>>
            {
                ["detection categories"] = detection,
                ["classification classes"] = Of(VisualTask.Classification),
                ["grounding relations"] = relations,
            },
            new Dictionary<string, IReadOnlyList<string>>
            {
                ["few-shot detection (quickstart, Tables 3, 4, 8)"] = few.NovelCategories,
                ["open-vocabulary novel (Tables 5, 7)"] = ovd.NovelCategories,
                ["classification (Table 2)"] = SyntheticDatasets.Manifest("shapes-classification").BaseCategories,
                ["grounding relations (Table 6)"] = [.. GroundingGenerator.Relations.Except(relations)],
            },
            [
                "Confidences that rank: pre-training boxes carry 1 when clear and their fade level when faded, so the model's confidence is informative; the few-shot data sets give every box 1, as the paper's do.",
                "Instances under-reported: 88 % of the pre-training scenes have one target, the few-shot scenes 60 %, so the model stops after one box where there are two or three.",
                "Answers that break the format: 15 % of the pre-training answers leave out the <think> block, which the format reward scores 0.",
            ]);
    }

    /// <summary>The tiny architecture for a tokenizer: special-token ids come from its vocabulary.</summary>
    public static Qwen2VLConfig Config(Qwen2Tokenizer tokenizer, TinyPretrainOptions options) =>
        Qwen2VLConfig.Tiny(vocabSize: tokenizer.VocabSize, hidden: options.Hidden, layers: options.Layers,
            visionWidth: options.VisionWidth, visionDepth: options.VisionDepth,
            imageTokenId: tokenizer.RequireId(Qwen2Tokenizer.ImagePad), videoTokenId: tokenizer.RequireId(Qwen2Tokenizer.VideoPad),
            visionStartTokenId: tokenizer.RequireId(Qwen2Tokenizer.VisionStart), visionEndTokenId: tokenizer.RequireId(Qwen2Tokenizer.VisionEnd));

    /// <summary>The training split of a stage: its data sets' base categories (test categories are never drawn), in data-set order.</summary>
    public static IReadOnlyList<VisualSample> StageData(PretrainStage stage, int? dataSeed = null) =>
        [.. stage.Data.SelectMany(d => SyntheticDatasets.Load(d.Dataset, shots: d.Images, seed: dataSeed).Train)];

    /// <summary>Seed of the held-out base-category images that check a pre-trained model (never a training seed).</summary>
    public const int HeldOutSeed = 999;

    /// <summary>Unseen images of the base categories (<paramref name="perCategory"/> each): what <c>vrft pretrain-tiny</c> checks its model on.</summary>
    public static SyntheticDataset HeldOutBaseTasks(int perCategory = 2) => SyntheticDatasets.Load("shapes-ovd", shots: perCategory, seed: HeldOutSeed);

    /// <summary>
    /// Makes the tiny base model from nothing: a BPE vocabulary learned on the prompts and targets of the last stage (every
    /// base category), a randomly initialised tiny Qwen2-VL, then the SFT stages in order. Deterministic for given options
    /// (on one thread count). <paramref name="onStep"/> gets the stage index with each step, <paramref name="onStageEnd"/> each
    /// finished stage's index.
    /// </summary>
    public static VisionLanguagePolicy Pretrain(TinyPretrainOptions options, Action<int, SftStepResult>? onStep = null,
        Action<int, VisionLanguagePolicy>? onStageEnd = null, CancellationToken cancellation = default)
    {
        if (options.Stages.Count == 0) throw new ArgumentException("pre-training needs at least one stage", nameof(options));
        TorchRuntime.EnsureLoaded();
        Qwen2Tokenizer tokenizer;
        // Trained on the last stage's texts plus every category's prompt, so that the words of the test categories are
        // tokens too (a word split into bytes would be a handicap of its own, which Qwen2-VL's vocabulary does not have).
        var texts = StageData(options.Stages[^1], options.DataSeed).SelectMany(s => new[]
            {
                ChatTemplate.Render([new ChatMessage("user", [new ImagePart(), new TextPart(s.Problem)])]),
                SftTrainer.Target(s),
            })
            .Concat(ShapeVocabulary.Categories.Select(Prompts.Detection))
            .Concat(ClassificationGenerator.ClassNames.Select(Prompts.ClassificationSolution));
        tokenizer = BpeTrainer.Train(texts, options.VocabSize);
        var processor = new Qwen2VLProcessor(tokenizer, new Qwen2VLImageProcessor());
        var model = Qwen2VLForConditionalGeneration.Create(Config(tokenizer, options), options.Seed, CPU);
        var policy = new VisionLanguagePolicy(model, processor);
        Train(policy, options, onStep, onStageEnd, cancellation);
        return policy;
    }

    /// <summary>Runs <paramref name="options"/>' stages on an existing model (e.g. the last stage again, on fresh images).</summary>
    public static void Train(VisionLanguagePolicy policy, TinyPretrainOptions options, Action<int, SftStepResult>? onStep = null,
        Action<int, VisionLanguagePolicy>? onStageEnd = null, CancellationToken cancellation = default)
    {
        for (int i = 0; i < options.Stages.Count && !cancellation.IsCancellationRequested; i++)
        {
            var stage = options.Stages[i];
            var data = StageData(stage, options.DataSeed);
            using var sft = new SftTrainer(policy, data, options.Sft with { LearningRate = stage.LearningRate }, stage.Steps);
            foreach (var step in sft.Train(cancellation: cancellation)) onStep?.Invoke(i, step);
            if (!cancellation.IsCancellationRequested) onStageEnd?.Invoke(i, policy);
        }
    }
}
