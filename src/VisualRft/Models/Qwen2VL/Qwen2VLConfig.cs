using System.Text.Json;
using System.Text.Json.Nodes;

namespace VisualRft.Models.Qwen2VL;

/// <summary>The Qwen2 decoder (qwen2vl-spec.md §1.1, §5).</summary>
public sealed record Qwen2VLTextConfig(
    int VocabSize, int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads, int NumKeyValueHeads,
    int[] MropeSection, double RopeTheta = 1_000_000.0, double RmsNormEps = 1e-6, bool TieWordEmbeddings = false)
{
    public int HeadDim => HiddenSize / NumAttentionHeads;
}

/// <summary>
/// The vision tower. <see cref="Width"/> is the transformer width (Qwen2-VL <c>embed_dim</c>, Qwen2.5-VL
/// <c>hidden_size</c>); <see cref="OutHiddenSize"/> is the merger output (Qwen2-VL <c>hidden_size</c>, Qwen2.5-VL
/// <c>out_hidden_size</c>) — the naming trap of spec §7. <see cref="WindowSize"/> and <see cref="FullAttBlockIndexes"/>
/// only matter for Qwen2.5-VL.
/// </summary>
public sealed record Qwen2VLVisionConfig(
    int Depth, int Width, int OutHiddenSize, int NumHeads, int IntermediateSize, string HiddenAct = "quick_gelu",
    int PatchSize = 14, int TemporalPatchSize = 2, int SpatialMergeSize = 2, int InChannels = 3,
    int WindowSize = 112, int[]? FullAttBlockIndexes = null, double RopeTheta = 10000.0)
{
    public int HeadDim => Width / NumHeads;
    /// <summary>Values of one flattened patch row (3·2·14·14 = 1176).</summary>
    public int PatchDim => InChannels * TemporalPatchSize * PatchSize * PatchSize;
}

/// <summary>
/// A Qwen2-VL (<c>qwen2_vl</c>) or Qwen2.5-VL (<c>qwen2_5_vl</c>) configuration. Read from a Hugging Face
/// <c>config.json</c> in the flat layout of the released checkpoints or the nested <c>text_config</c>/<c>vision_config</c>
/// layout (spec §1.1 parser rules), or built in code.
/// </summary>
public sealed record Qwen2VLConfig(
    string ModelType, Qwen2VLTextConfig Text, Qwen2VLVisionConfig Vision,
    int ImageTokenId = 151655, int VideoTokenId = 151656, int VisionStartTokenId = 151652, int VisionEndTokenId = 151653)
{
    public const string Qwen2VLType = "qwen2_vl";
    public const string Qwen25VLType = "qwen2_5_vl";

    /// <summary>True for Qwen2.5-VL: RMSNorm + SwiGLU vision blocks and window attention (spec §7).</summary>
    public bool IsQwen25 => ModelType == Qwen25VLType;

    /// <summary>config.json files are a few KB; a larger one is refused before it is read.</summary>
    public const int MaxFileBytes = 1 << 20;

    /// <summary>Reads <paramref name="path"/>; a missing, mistyped or out-of-bounds key gives an error naming the key and the file.</summary>
    public static Qwen2VLConfig Load(string path) => Parse(IO.JsonFields.Load(path, MaxFileBytes, "config file"));

    /// <summary>Parses a config object; <paramref name="source"/> names it in errors.</summary>
    public static Qwen2VLConfig Parse(JsonObject root, string source) => Parse(IO.JsonFields.Of(root, source));

    static readonly Dictionary<string, string> ModelTypes = new() { [Qwen2VLType] = Qwen2VLType, [Qwen25VLType] = Qwen25VLType };

    /// <summary>Every value is checked against <see cref="Validate"/>'s bounds before anything is built from it.</summary>
    static Qwen2VLConfig Parse(IO.JsonFields root)
    {
        var modelType = root.OneOf("model_type", ModelTypes);
        // Text fields live under text_config in files saved by newer transformers, at the root in the released ones; a
        // key in neither is reported missing where that file would have it.
        var text = root.ObjOrNull("text_config");
        IO.JsonFields T(string key) => text != null && (text.Has(key) || !root.Has(key)) ? text : root;
        var ropeKey = T("rope_parameters").Kind("rope_parameters") == JsonValueKind.Object ? "rope_parameters" : "rope_scaling";
        var rope = T(ropeKey).ObjOrNull(ropeKey) is { } r && r.Has("mrope_section") ? r
            : throw IO.JsonFields.Error(root.Source, "rope_scaling.mrope_section", "is missing (or rope_parameters.mrope_section)");
        var section = rope.Ints("mrope_section", maxCount: 1024);
        var theta = T("rope_theta").Has("rope_theta") ? T("rope_theta").Double("rope_theta") : rope.Double("rope_theta", 1_000_000.0);
        var textCfg = new Qwen2VLTextConfig(
            VocabSize: T("vocab_size").Int("vocab_size"), HiddenSize: T("hidden_size").Int("hidden_size"),
            IntermediateSize: T("intermediate_size").Int("intermediate_size"),
            NumHiddenLayers: T("num_hidden_layers").Int("num_hidden_layers"), NumAttentionHeads: T("num_attention_heads").Int("num_attention_heads"),
            NumKeyValueHeads: T("num_key_value_heads").Int("num_key_value_heads"),
            MropeSection: section,
            RopeTheta: theta,
            RmsNormEps: T("rms_norm_eps").Double("rms_norm_eps", 1e-6),
            // The released files keep this one at the root even when the other text fields are nested.
            TieWordEmbeddings: (root.Has("tie_word_embeddings") || text == null ? root : text).Bool("tie_word_embeddings", false));

        var v = root.Obj("vision_config");
        var qwen25 = modelType == Qwen25VLType;
        var width = v.Int(qwen25 ? "hidden_size" : "embed_dim");
        int OptInt(string key, string alt, int dflt) => v.Has(key) ? v.Int(key) : v.Int(alt, dflt);
        var visionCfg = new Qwen2VLVisionConfig(
            Depth: v.Int("depth"), Width: width,
            OutHiddenSize: v.Int(qwen25 ? "out_hidden_size" : "hidden_size"),
            NumHeads: v.Int("num_heads"),
            IntermediateSize: qwen25 ? v.Int("intermediate_size") : (int)Math.Min(int.MaxValue, (long)width * v.Int("mlp_ratio")),
            HiddenAct: v.Str("hidden_act", qwen25 ? "silu" : "quick_gelu")!,
            PatchSize: OptInt("patch_size", "spatial_patch_size", 14),
            TemporalPatchSize: v.Int("temporal_patch_size", 2),
            SpatialMergeSize: v.Int("spatial_merge_size", 2),
            InChannels: OptInt("in_channels", "in_chans", 3),
            WindowSize: qwen25 ? v.Int("window_size") : 112,
            FullAttBlockIndexes: qwen25 ? v.Ints("fullatt_block_indexes", maxCount: 1024) : null);
        var config = new Qwen2VLConfig(modelType, textCfg, visionCfg,
            ImageTokenId: root.Int("image_token_id"),
            VideoTokenId: root.Int("video_token_id", 151656),
            VisionStartTokenId: root.Int("vision_start_token_id"),
            VisionEndTokenId: root.Int("vision_end_token_id", 151653));
        config.Validate(root.Source);
        return config;
    }

    /// <summary>Largest values accepted, about twice those of the largest released models (Qwen2.5-VL-72B: hidden 8192,
    /// 80 layers, intermediate 29568, 64 heads; vision 1280 wide, 32 deep): a config beyond them is a mistake or an
    /// attack, and would allocate tens of gigabytes before the checkpoint is even compared.</summary>
    public static class Limits
    {
        public const int Vocab = 1 << 20, Hidden = 16384, Intermediate = 65536, Layers = 256, Heads = 256, VisionDepth = 256,
            VisionWidth = 8192, Patch = 64, TemporalPatch = 16, Merge = 16;
    }

    static readonly string[] Activations = ["silu", "swish", "quick_gelu", "gelu", "gelu_pytorch_tanh", "gelu_new"];

    /// <summary>
    /// Checks every value against <see cref="Limits"/> and the architecture's own rules (heads divide the width, head
    /// dimensions are even for the rotary embedding, token ids lie in the vocabulary, Qwen2.5-VL windows hold at least one
    /// merged token …) and throws an <see cref="InvalidDataException"/> naming <paramref name="source"/> and the key.
    /// </summary>
    public void Validate(string source)
    {
        void Check(bool ok, string key, string rule, object value)
        {
            if (!ok) throw IO.JsonFields.Error(source, key, $"{rule}, got {value}");
        }
        void Range(long value, long min, long max, string key) => Check(value >= min && value <= max, key, $"must be between {min:N0} and {max:N0}", value);
        var t = Text;
        Range(t.VocabSize, 1, Limits.Vocab, "vocab_size");
        Range(t.HiddenSize, 1, Limits.Hidden, "hidden_size");
        Range(t.IntermediateSize, 1, Limits.Intermediate, "intermediate_size");
        Range(t.NumHiddenLayers, 1, Limits.Layers, "num_hidden_layers");
        Range(t.NumAttentionHeads, 1, Limits.Heads, "num_attention_heads");
        Check(t.HiddenSize % t.NumAttentionHeads == 0 && t.HeadDim % 2 == 0, "num_attention_heads",
            $"must divide hidden_size {t.HiddenSize} into an even head dimension", t.NumAttentionHeads);
        Range(t.NumKeyValueHeads, 1, t.NumAttentionHeads, "num_key_value_heads");
        Check(t.NumAttentionHeads % t.NumKeyValueHeads == 0, "num_key_value_heads", $"must divide num_attention_heads {t.NumAttentionHeads}", t.NumKeyValueHeads);
        Check(t.MropeSection.Length == 3 && t.MropeSection.All(x => x >= 0) && t.MropeSection.Sum(x => (long)x) * 2 == t.HeadDim, "mrope_section",
            $"must be three non-negative numbers summing to head_dim/2 = {t.HeadDim / 2}", $"[{string.Join(",", t.MropeSection.Take(8))}]");
        Check(double.IsFinite(t.RopeTheta) && t.RopeTheta > 1, "rope_theta", "must be a finite number above 1", t.RopeTheta);
        Check(double.IsFinite(t.RmsNormEps) && t.RmsNormEps > 0 && t.RmsNormEps < 1, "rms_norm_eps", "must be in (0, 1)", t.RmsNormEps);

        var v = Vision;
        const string vp = "vision_config.";
        Range(v.Depth, 1, Limits.VisionDepth, vp + "depth");
        Range(v.Width, 1, Limits.VisionWidth, vp + (IsQwen25 ? "hidden_size" : "embed_dim"));
        Range(v.NumHeads, 1, Limits.Heads, vp + "num_heads");
        Check(v.Width % v.NumHeads == 0 && v.HeadDim % 4 == 0, vp + "num_heads",
            $"must divide the vision width {v.Width} into a head dimension that is a multiple of 4", v.NumHeads);
        Range(v.IntermediateSize, 1, Limits.Intermediate, vp + (IsQwen25 ? "intermediate_size" : "mlp_ratio × embed_dim"));
        Check(Activations.Contains(v.HiddenAct), vp + "hidden_act", $"must be one of {string.Join(", ", Activations)}", $"'{IO.Excerpt.Of(v.HiddenAct, 40)}'");
        Range(v.PatchSize, 1, Limits.Patch, vp + "patch_size");
        Range(v.TemporalPatchSize, 1, Limits.TemporalPatch, vp + "temporal_patch_size");
        Range(v.SpatialMergeSize, 1, Limits.Merge, vp + "spatial_merge_size");
        Check(v.InChannels == 3, vp + "in_channels", "must be 3 (images are RGB)", v.InChannels);
        Check(v.OutHiddenSize == t.HiddenSize, vp + (IsQwen25 ? "out_hidden_size" : "hidden_size"), $"(the vision merger output) must equal the text hidden_size {t.HiddenSize}", v.OutHiddenSize);
        if (IsQwen25)
        {
            int unit = v.PatchSize * v.SpatialMergeSize;
            Check(v.WindowSize >= unit && v.WindowSize <= 1 << 16, vp + "window_size", $"must be between patch_size × spatial_merge_size = {unit} and 65,536", v.WindowSize);
            var bad = (v.FullAttBlockIndexes ?? []).FirstOrDefault(i => i < 0 || i >= v.Depth, -1);
            Check(bad < 0, vp + "fullatt_block_indexes", $"must be block numbers below depth {v.Depth}", bad);
        }
        foreach (var (key, id) in new[] { ("image_token_id", ImageTokenId), ("video_token_id", VideoTokenId),
                     ("vision_start_token_id", VisionStartTokenId), ("vision_end_token_id", VisionEndTokenId) })
            Check(id >= 0 && id < t.VocabSize, key, $"must be a token id below vocab_size {t.VocabSize:N0}", id);
    }

    /// <summary>
    /// The released checkpoints' layout (text fields at the root, <c>vision_config</c> nested), which <see cref="Parse(JsonObject, string)"/>
    /// reads back to an equal configuration.
    /// </summary>
    public JsonObject ToJson()
    {
        var v = new JsonObject
        {
            ["depth"] = Vision.Depth, ["num_heads"] = Vision.NumHeads, ["hidden_act"] = Vision.HiddenAct,
            ["patch_size"] = Vision.PatchSize, ["temporal_patch_size"] = Vision.TemporalPatchSize,
            ["spatial_merge_size"] = Vision.SpatialMergeSize, ["in_channels"] = Vision.InChannels,
        };
        if (IsQwen25)
        {
            v["hidden_size"] = Vision.Width; v["out_hidden_size"] = Vision.OutHiddenSize; v["intermediate_size"] = Vision.IntermediateSize;
            v["window_size"] = Vision.WindowSize; v["fullatt_block_indexes"] = new JsonArray([.. (Vision.FullAttBlockIndexes ?? []).Select(i => (JsonNode)i)]);
        }
        else
        {
            if (Vision.IntermediateSize % Vision.Width != 0)
                throw new InvalidOperationException($"qwen2_vl stores the vision MLP as mlp_ratio; {Vision.IntermediateSize} is not a multiple of {Vision.Width}");
            v["embed_dim"] = Vision.Width; v["hidden_size"] = Vision.OutHiddenSize; v["mlp_ratio"] = Vision.IntermediateSize / Vision.Width;
        }
        return new JsonObject
        {
            ["model_type"] = ModelType,
            ["architectures"] = new JsonArray(IsQwen25 ? "Qwen2_5_VLForConditionalGeneration" : "Qwen2VLForConditionalGeneration"),
            ["vocab_size"] = Text.VocabSize, ["hidden_size"] = Text.HiddenSize, ["intermediate_size"] = Text.IntermediateSize,
            ["num_hidden_layers"] = Text.NumHiddenLayers, ["num_attention_heads"] = Text.NumAttentionHeads,
            ["num_key_value_heads"] = Text.NumKeyValueHeads, ["rope_theta"] = Text.RopeTheta, ["rms_norm_eps"] = Text.RmsNormEps,
            ["rope_scaling"] = new JsonObject { ["type"] = "mrope", ["mrope_section"] = new JsonArray([.. Text.MropeSection.Select(i => (JsonNode)i)]) },
            ["tie_word_embeddings"] = Text.TieWordEmbeddings,
            ["image_token_id"] = ImageTokenId, ["video_token_id"] = VideoTokenId,
            ["vision_start_token_id"] = VisionStartTokenId, ["vision_end_token_id"] = VisionEndTokenId,
            ["vision_config"] = v,
        };
    }

    /// <summary>Qwen/Qwen2-VL-2B-Instruct (spec §1.1, §2.1).</summary>
    public static Qwen2VLConfig Qwen2VL2B() => new(Qwen2VLType,
        new Qwen2VLTextConfig(151936, 1536, 8960, 28, 12, 2, [16, 24, 24], TieWordEmbeddings: true),
        new Qwen2VLVisionConfig(Depth: 32, Width: 1280, OutHiddenSize: 1536, NumHeads: 16, IntermediateSize: 5120));

    /// <summary>Qwen/Qwen2-VL-7B-Instruct: 3584/28/28/4/18944, vocab 152064, untied head (spec §2.1, §7).</summary>
    public static Qwen2VLConfig Qwen2VL7B() => new(Qwen2VLType,
        new Qwen2VLTextConfig(152064, 3584, 18944, 28, 28, 4, [16, 24, 24], TieWordEmbeddings: false),
        new Qwen2VLVisionConfig(Depth: 32, Width: 1280, OutHiddenSize: 3584, NumHeads: 16, IntermediateSize: 5120));

    /// <summary>
    /// A tiny configuration of either family for tests and the CPU teaching model: the same code paths as the real
    /// models, with widths small enough to train on two cores.
    /// </summary>
    public static Qwen2VLConfig Tiny(string modelType = Qwen2VLType, int vocabSize = 320, int hidden = 64, int layers = 2, int visionWidth = 32,
        int visionDepth = 2, int imageTokenId = 300, int videoTokenId = 301, int visionStartTokenId = 302, int visionEndTokenId = 303, bool? tie = null)
    {
        var qwen25 = modelType == Qwen25VLType;
        return new Qwen2VLConfig(modelType,
            new Qwen2VLTextConfig(vocabSize, hidden, 2 * hidden, layers, 4, 2, MropeSectionFor(hidden / 4), TieWordEmbeddings: tie ?? !qwen25),
            new Qwen2VLVisionConfig(Depth: visionDepth, Width: visionWidth, OutHiddenSize: hidden, NumHeads: 4, IntermediateSize: 2 * visionWidth,
                HiddenAct: qwen25 ? "silu" : "quick_gelu", WindowSize: 56, FullAttBlockIndexes: qwen25 ? [visionDepth - 1] : null),
            imageTokenId, videoTokenId, visionStartTokenId, visionEndTokenId);
    }

    /// <summary>The T/H/W split of head_dim/2 frequencies in the released proportions 16:24:24 (for head_dim 128).</summary>
    static int[] MropeSectionFor(int headDim)
    {
        var half = headDim / 2;
        var t = half / 4;
        var h = (half - t) / 2;
        return [t, h, half - t - h];
    }
}
