using TorchSharp;
using System.Text.Json;
using VisualRft.IO;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

public sealed partial class Qwen2VLForConditionalGeneration
{
    /// <summary>
    /// A model with freshly initialised weights (HF <c>_init_weights</c>: linear and embedding weights
    /// N(0, 0.02), biases 0, norm weights 1), reproducible from <paramref name="seed"/>.
    /// </summary>
    public static Qwen2VLForConditionalGeneration Create(Qwen2VLConfig config, ulong seed, Device? device = null, ScalarType? dtype = null)
    {
        TorchRuntime.EnsureLoaded();
        var m = new Qwen2VLForConditionalGeneration(config, device, dtype);
        var g = new Generator(seed, device: torch.CPU);
        using var _ = torch.no_grad();
        foreach (var (name, p) in m.named_parameters())
        {
            var isNorm = name.Contains("norm") || name.Contains("ln_q");
            if (isNorm && name.EndsWith(".weight")) p.fill_(1.0);
            else if (name.EndsWith(".bias")) p.zero_();
            else
            {
                using var r = torch.randn(p.shape, dtype: ScalarType.Float32, generator: g) * 0.02;
                p.copy_(r);
            }
        }
        return m;
    }

    /// <summary>
    /// Loads a local Hugging Face folder: <c>config.json</c> and <c>model.safetensors</c> or
    /// <c>model.safetensors.index.json</c> + shards, on <paramref name="device"/> (default
    /// <see cref="TorchRuntime.DefaultDevice"/>) in <paramref name="dtype"/> (default float32).
    /// </summary>
    public static Qwen2VLForConditionalGeneration FromPretrained(string folder, Device? device = null, ScalarType? dtype = null)
    {
        TorchRuntime.EnsureLoaded();
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder not found: {folder}");
        var config = Qwen2VLConfig.Load(Path.Combine(folder, "config.json"));
        var type = dtype ?? ScalarType.Float32;
        var weights = SafeTensors.LoadFolder(folder, type);
        try
        {
            var m = new Qwen2VLForConditionalGeneration(config, device ?? TorchRuntime.DefaultDevice(), type);
            m.LoadWeights(weights, folder);
            return m;
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>Loads one safetensors file of either key layout (strict).</summary>
    public void LoadSafetensors(string path)
    {
        var weights = SafeTensors.Load(path, DType);
        try { LoadWeights(weights, path); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
    }

    /// <summary>Writes the weights with the legacy Hugging Face names of the released checkpoints
    /// (no <c>lm_head.weight</c> when tied).</summary>
    public void SaveSafetensors(string path)
    {
        var sd = state_dict();
        SafeTensors.Save(path, sd, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Writes a folder that <see cref="FromPretrained"/> loads: <c>config.json</c> and <c>model.safetensors</c>.</summary>
    public void SavePretrained(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), Config.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        SaveSafetensors(Path.Combine(folder, "model.safetensors"));
    }

    /// <summary>
    /// Copies <paramref name="weights"/> (either key layout, spec §2.4) into the parameters, strictly: missing,
    /// unexpected and wrong-shape tensors are all listed in one error naming <paramref name="source"/>.
    /// </summary>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        var own = state_dict();
        var byName = new Dictionary<string, Tensor>();
        var unexpected = new List<string>();
        foreach (var (key, t) in weights)
        {
            var name = NormalizeKey(key);
            if (name == "lm_head.weight" && lm_head is null && Config.Text.TieWordEmbeddings)
                continue;   // some exports keep the tied copy; it is the embedding matrix
            if (own.ContainsKey(name)) byName[name] = t;
            else unexpected.Add(key);
        }
        var missing = own.Keys.Where(k => !byName.ContainsKey(k)).ToList();
        var wrongShape = byName.Where(kv => !kv.Value.shape.SequenceEqual(own[kv.Key].shape))
            .Select(kv => $"{kv.Key}: checkpoint [{string.Join(",", kv.Value.shape)}], model [{string.Join(",", own[kv.Key].shape)}]").ToList();
        if (missing.Count + unexpected.Count + wrongShape.Count > 0)
            throw new InvalidDataException($"{source}: the weights do not match the {Config.ModelType} configuration."
                + List("missing", missing) + List("unexpected", unexpected) + List("wrong shape", wrongShape));
        using var _ = torch.no_grad();
        foreach (var (name, t) in byName) own[name].copy_(t);

        static string List(string what, List<string> items) =>
            items.Count == 0 ? "" : $" {items.Count} {what}: {string.Join("; ", items.Take(20))}{(items.Count > 20 ? "; …" : "")}.";
    }

    /// <summary>Maps the transformers ≥ 4.52 layout and PEFT exports onto the legacy names (spec §2.4).</summary>
    public static string NormalizeKey(string key)
    {
        const string peft = "base_model.model.";
        if (key.StartsWith(peft, StringComparison.Ordinal)) key = key[peft.Length..];
        if (key.StartsWith("model.visual.", StringComparison.Ordinal)) return "visual." + key["model.visual.".Length..];
        if (key.StartsWith("model.language_model.", StringComparison.Ordinal)) return "model." + key["model.language_model.".Length..];
        return key;
    }
}
