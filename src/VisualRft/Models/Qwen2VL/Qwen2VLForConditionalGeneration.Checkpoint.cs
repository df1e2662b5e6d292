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
        var type = dtype ?? ScalarType.Float32;
        var config = CheckFolder(folder, type);
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

    /// <summary>
    /// Checks a local Hugging Face model folder before anything is allocated: <c>config.json</c> (types, and bounds by
    /// <see cref="Qwen2VLConfig.Validate"/>), the safetensors headers of every weight file (shards inside the folder,
    /// byte ranges inside the file and not overlapping), every tensor's name and shape against the parameters the config
    /// implies (read from the model built on the meta device, which holds no memory), floating-point dtypes, and the
    /// memory the weights take in <paramref name="dtype"/>. Returns the config; errors name the file and the key or tensor.
    /// </summary>
    public static Qwen2VLConfig CheckFolder(string folder, ScalarType dtype = ScalarType.Float32)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder not found: {folder}");
        var config = Qwen2VLConfig.Load(Path.Combine(folder, "config.json"));
        var headers = SafeTensors.ReadFolderHeaders(folder);
        TorchRuntime.EnsureLoaded();
        Dictionary<string, long[]> own;
        using (var meta = new Qwen2VLForConditionalGeneration(config, torch.META, dtype))
            own = meta.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var problem = Mismatch(config, own, headers.Select(h => (h.Key, h.Value.Info.Shape, SafeTensors.IsFloatingPoint(h.Value.Info.DType) ? null : h.Value.Info.DType)));
        if (problem is not null) throw new InvalidDataException($"{folder}: the weights do not match {Path.Combine(folder, "config.json")} ({config.ModelType}).{problem}");
        using var probe = torch.empty(0, dtype: dtype, device: torch.META);
        long bytes = own.Values.Sum(shape => shape.Aggregate(1L, (a, b) => a * b)) * probe.ElementSize;
        // The loaded weights and the model's parameters coexist until the copy ends.
        if (2 * bytes > IO.MemoryBudget.AvailableBytes)
            throw new InsufficientMemoryException($"{folder}: the weights take {IO.MemoryBudget.Format(bytes)} as {dtype}, twice that while they are loaded, "
                + $"more than the {IO.MemoryBudget.Format(IO.MemoryBudget.AvailableBytes)} of memory here");
        return config;
    }

    /// <summary>What keeps a checkpoint's tensors (name, shape, and the dtype when it is not floating point) from loading
    /// into a model with parameters <paramref name="own"/>: missing, unexpected, wrong-shape and non-float tensors, or
    /// null when they fit.</summary>
    static string? Mismatch(Qwen2VLConfig config, IReadOnlyDictionary<string, long[]> own, IEnumerable<(string Key, long[] Shape, string? NonFloat)> checkpoint)
    {
        var seen = new HashSet<string>();
        var unexpected = new List<string>();
        var wrongShape = new List<string>();
        var notFloat = new List<string>();
        foreach (var (key, shape, nonFloat) in checkpoint)
        {
            var name = NormalizeKey(key);
            if (name == "lm_head.weight" && config.Text.TieWordEmbeddings)
                continue;   // some exports keep the tied copy; it is the embedding matrix
            if (!own.TryGetValue(name, out var expected)) { unexpected.Add(Excerpt.Of(key)); continue; }
            seen.Add(name);
            if (!shape.SequenceEqual(expected))
                wrongShape.Add($"{name}: checkpoint [{string.Join(",", shape.Take(8))}], model [{string.Join(",", expected)}]");
            if (nonFloat is not null) notFloat.Add($"{name}: {nonFloat}");
        }
        var missing = own.Keys.Where(k => !seen.Contains(k)).ToList();
        string text = List("missing", missing) + List("unexpected", unexpected) + List("wrong shape", wrongShape)
            + List("not floating point (the parameters take F16, BF16, F32 or F64)", notFloat);
        return text.Length == 0 ? null : text;

        static string List(string what, List<string> items) =>
            items.Count == 0 ? "" : $" {items.Count} {what}: {string.Join("; ", items.Take(8))}{(items.Count > 8 ? "; …" : "")}.";
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
        var problem = Mismatch(Config, own.ToDictionary(kv => kv.Key, kv => kv.Value.shape),
            weights.Select(kv => (kv.Key, kv.Value.shape, kv.Value.is_floating_point() ? null : kv.Value.dtype.ToString())));
        if (problem is not null) throw new InvalidDataException($"{source}: the weights do not match the {Config.ModelType} configuration.{problem}");
        using var _ = torch.no_grad();
        foreach (var (key, t) in weights)
            if (own.TryGetValue(NormalizeKey(key), out var p)) p.copy_(t);
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
