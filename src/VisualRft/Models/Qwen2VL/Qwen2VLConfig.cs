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

    /// <summary>Reads <paramref name="path"/>; a missing required key gives an error naming the key and the file.</summary>
    public static Qwen2VLConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file not found: {path}", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root is not JsonObject obj) throw new InvalidDataException($"{path}: the top level is not a JSON object");
        return Parse(obj, path);
    }

    /// <summary>Parses a config object; <paramref name="source"/> names it in errors.</summary>
    public static Qwen2VLConfig Parse(JsonObject root, string source)
    {
        var r = new Reader(root, source);
        var modelType = r.Str(root, "model_type");
        if (modelType is not (Qwen2VLType or Qwen25VLType))
            throw new InvalidDataException($"{source}: model_type '{modelType}' is not {Qwen2VLType} or {Qwen25VLType}");
        // Text fields live under text_config in files saved by newer transformers, at the root in the released ones.
        var text = root["text_config"] as JsonObject;
        JsonNode? T(string key) => text?[key] ?? root[key];
        var rope = T("rope_parameters") as JsonObject ?? T("rope_scaling") as JsonObject;
        var section = rope?["mrope_section"] as JsonArray
            ?? throw new InvalidDataException($"{source}: missing required key 'rope_scaling.mrope_section' (or rope_parameters.mrope_section)");
        var theta = T("rope_theta") ?? rope?["rope_theta"];
        var textCfg = new Qwen2VLTextConfig(
            VocabSize: r.Int(T, "vocab_size"), HiddenSize: r.Int(T, "hidden_size"), IntermediateSize: r.Int(T, "intermediate_size"),
            NumHiddenLayers: r.Int(T, "num_hidden_layers"), NumAttentionHeads: r.Int(T, "num_attention_heads"),
            NumKeyValueHeads: r.Int(T, "num_key_value_heads"),
            MropeSection: section.Select(n => n!.GetValue<int>()).ToArray(),
            RopeTheta: theta?.GetValue<double>() ?? 1_000_000.0,
            RmsNormEps: T("rms_norm_eps")?.GetValue<double>() ?? 1e-6,
            TieWordEmbeddings: (root["tie_word_embeddings"] ?? text?["tie_word_embeddings"])?.GetValue<bool>() ?? false);
        if (textCfg.MropeSection.Sum() * 2 != textCfg.HeadDim)
            throw new InvalidDataException($"{source}: mrope_section [{string.Join(",", textCfg.MropeSection)}] must sum to head_dim/2 = {textCfg.HeadDim / 2}");

        var v = root["vision_config"] as JsonObject
            ?? throw new InvalidDataException($"{source}: missing required key 'vision_config'");
        JsonNode? V(string key) => v[key];
        var qwen25 = modelType == Qwen25VLType;
        var width = r.Int(V, qwen25 ? "hidden_size" : "embed_dim", "vision_config.");
        var visionCfg = new Qwen2VLVisionConfig(
            Depth: r.Int(V, "depth", "vision_config."), Width: width,
            OutHiddenSize: r.Int(V, qwen25 ? "out_hidden_size" : "hidden_size", "vision_config."),
            NumHeads: r.Int(V, "num_heads", "vision_config."),
            IntermediateSize: qwen25 ? r.Int(V, "intermediate_size", "vision_config.") : width * r.Int(V, "mlp_ratio", "vision_config."),
            HiddenAct: V("hidden_act")?.GetValue<string>() ?? (qwen25 ? "silu" : "quick_gelu"),
            PatchSize: (V("patch_size") ?? V("spatial_patch_size"))?.GetValue<int>() ?? 14,
            TemporalPatchSize: V("temporal_patch_size")?.GetValue<int>() ?? 2,
            SpatialMergeSize: V("spatial_merge_size")?.GetValue<int>() ?? 2,
            InChannels: (V("in_channels") ?? V("in_chans"))?.GetValue<int>() ?? 3,
            WindowSize: qwen25 ? r.Int(V, "window_size", "vision_config.") : 112,
            FullAttBlockIndexes: qwen25
                ? (V("fullatt_block_indexes") as JsonArray ?? throw r.Missing("vision_config.fullatt_block_indexes")).Select(n => n!.GetValue<int>()).ToArray()
                : null);
        if (textCfg.HiddenSize != visionCfg.OutHiddenSize)
            throw new InvalidDataException($"{source}: the vision merger output ({visionCfg.OutHiddenSize}) differs from the text hidden_size ({textCfg.HiddenSize})");
        return new Qwen2VLConfig(modelType, textCfg, visionCfg,
            ImageTokenId: r.Int(k => root[k], "image_token_id"), VideoTokenId: root["video_token_id"]?.GetValue<int>() ?? 151656,
            VisionStartTokenId: r.Int(k => root[k], "vision_start_token_id"),
            VisionEndTokenId: root["vision_end_token_id"]?.GetValue<int>() ?? 151653);
    }

    /// <summary>
    /// The released checkpoints' layout (text fields at the root, <c>vision_config</c> nested), which <see cref="Parse"/>
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

    sealed class Reader(JsonObject root, string source)
    {
        public string Str(JsonObject o, string key) =>
            o[key]?.GetValue<string>() ?? throw Missing(key);
        public int Int(Func<string, JsonNode?> get, string key, string prefix = "")
        {
            var n = get(key) ?? throw Missing(prefix + key);
            try { return n.GetValue<int>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            { throw new InvalidDataException($"{source}: key '{prefix}{key}' must be an integer, got {n.ToJsonString()}", e); }
        }
        public InvalidDataException Missing(string key) =>
            new($"{source}: missing required key '{key}'" + (root.ContainsKey("text_config") ? "" : " (looked at the root and in text_config)"));
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
