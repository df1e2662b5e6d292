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

/// <summary>
/// One stage of the tiny model's pre-training: SFT on the training split of a dataset's base categories, with its own
/// warm-up and linear decay.
/// </summary>
/// <param name="Dataset">Manifest name (data-manifests/).</param>
/// <param name="Steps">SFT steps of 16 samples.</param>
/// <param name="ImagesPerCategory">Training images per category.</param>
/// <param name="LearningRate">Peak AdamW learning rate.</param>
public sealed record PretrainStage(string Dataset, int Steps, int ImagesPerCategory, double LearningRate);

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
    /// a few hundred steps (measured: coordinate NLL 1.26 vs 1.87 with swapped images after 600 steps); then every base
    /// category alone, then the few-shot scenes with distractors.
    /// </summary>
    public IReadOnlyList<PretrainStage> Stages { get; init; } =
    [
        new("shapes-first-look", 600, 400, 1.5e-3),
        new("shapes-single-object", 1200, 100, 1e-3),
        new("shapes-ovd", 2400, 400, 1e-3),
    ];

    public SftOptions Sft { get; init; } = new() { BatchSize = 16, WarmupSteps = 100, WeightDecay = 0.01, Seed = 7 };
    public ulong Seed { get; init; } = 7;
    /// <summary>Seed of the SFT images (null: each manifest's); a continued run draws fresh images with another.</summary>
    public int? DataSeed { get; init; }
}

/// <summary>
/// The built-in CPU model: a tiny configuration of the Qwen2-VL architecture (same code as 2B/7B) with a small byte-level
/// vocabulary, pre-trained by supervised fine-tuning on the base categories of the synthetic detection task and shipped
/// inside the package, so that teaching, tests and the quickstart run offline in minutes (DESIGN.md, "one model family,
/// every size"). Novel categories are never seen in pre-training: they are what Visual-RFT then learns from a few shots.
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

    /// <summary>The tiny architecture for a tokenizer: special-token ids come from its vocabulary.</summary>
    public static Qwen2VLConfig Config(Qwen2Tokenizer tokenizer, TinyPretrainOptions options) =>
        Qwen2VLConfig.Tiny(vocabSize: tokenizer.VocabSize, hidden: options.Hidden, layers: options.Layers,
            visionWidth: options.VisionWidth, visionDepth: options.VisionDepth,
            imageTokenId: tokenizer.RequireId(Qwen2Tokenizer.ImagePad), videoTokenId: tokenizer.RequireId(Qwen2Tokenizer.VideoPad),
            visionStartTokenId: tokenizer.RequireId(Qwen2Tokenizer.VisionStart), visionEndTokenId: tokenizer.RequireId(Qwen2Tokenizer.VisionEnd));

    /// <summary>The training split of a stage: its dataset's base categories (novel categories are never drawn).</summary>
    public static SyntheticDataset StageData(PretrainStage stage, int? dataSeed = null) =>
        SyntheticDatasets.Load(stage.Dataset, shots: stage.ImagesPerCategory, seed: dataSeed);

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
        tokenizer = BpeTrainer.Train(StageData(options.Stages[^1], options.DataSeed).Train.SelectMany(s => new[]
            {
                ChatTemplate.Render([new ChatMessage("user", [new ImagePart(), new TextPart(s.Problem)])]),
                SftTrainer.Target(s),
            }), options.VocabSize);
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
            using var sft = new SftTrainer(policy, data.Train, options.Sft with { LearningRate = stage.LearningRate }, stage.Steps);
            foreach (var step in sft.Train(cancellation: cancellation)) onStep?.Invoke(i, step);
            if (!cancellation.IsCancellationRequested) onStageEnd?.Invoke(i, policy);
        }
    }
}
