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
        var files = SafeTensors.CheckpointFiles(folder);
        var m = new Qwen2VLForConditionalGeneration(config, device ?? TorchRuntime.DefaultDevice(), dtype ?? ScalarType.Float32);
        try
        {
            m.LoadFiles(files, folder);
            return m;
        }
        catch
        {
            m.Dispose();
            throw;
        }
    }

    /// <summary>Loads one safetensors file of either key layout (strict).</summary>
    public void LoadSafetensors(string path) => LoadFiles([path], path);

    /// <summary>
    /// Reads safetensors files into the parameters, strictly (see <see cref="LoadWeights"/>; checked from the headers
    /// before any data is read). A tensor stored in the parameter's dtype goes from the file straight into the
    /// parameter's memory, so that loading costs about one read of the file: no second copy of the checkpoint in
    /// memory, no fresh memory to fill twice. Other tensors (another dtype, or a parameter off the CPU) are read and
    /// converted one file at a time.
    /// </summary>
    void LoadFiles(IReadOnlyList<string> files, string source)
    {
        var headers = files.Select(f => (Path: f, Header: SafeTensors.ReadHeader(f))).ToList();
        var byKey = Match(headers.SelectMany(h => h.Header.Tensors.Select(t => (t.Name, t.Shape))), source).ToDictionary(kv => kv.Value, kv => kv.Key);
        var own = state_dict();
        var fileType = SafeTensors.DTypeName(DType);
        using var _ = torch.no_grad();
        foreach (var (path, (tensors, dataStart, _)) in headers)
        {
            var convert = new HashSet<string>();
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
                foreach (var t in tensors.Where(t => byKey.ContainsKey(t.Name)))
                {
                    var p = own[byKey[t.Name]];
                    if (t.DType == fileType && p.device_type == DeviceType.CPU && p.is_contiguous()) ReadInto(fs, dataStart + t.Begin, p);
                    else convert.Add(t.Name);
                }
            if (convert.Count == 0) continue;
            foreach (var (key, t) in SafeTensors.Load(path, DType, convert.Contains))
                using (t) own[byKey[key]].copy_(t);
        }
    }

    /// <summary>Reads the bytes of <paramref name="target"/> from <paramref name="offset"/>, in row blocks of at most
    /// 1 GiB (a span cannot exceed 2 GiB).</summary>
    static void ReadInto(FileStream fs, long offset, Tensor target)
    {
        fs.Position = offset;
        if (target.numel() == 0) return;
        var rows = target.dim() == 0 ? 1 : target.shape[0];
        var rowBytes = target.numel() * target.ElementSize / rows;
        var block = Math.Max(1, (1L << 30) / rowBytes);
        for (long r = 0; r < rows; r += block)
        {
            using var part = target.dim() == 0 ? target.alias() : target.narrow(0, r, Math.Min(block, rows - r));
            fs.ReadExactly(part.bytes);
        }
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
        var byName = Match(weights.Select(kv => (kv.Key, kv.Value.shape)), source);
        var own = state_dict();
        using var _ = torch.no_grad();
        foreach (var (name, key) in byName) own[name].copy_(weights[key]);
    }

    /// <summary>
    /// Pairs checkpoint keys (either layout) with parameter names, strictly: missing, unexpected and wrong-shape
    /// tensors are all listed in one error naming <paramref name="source"/>. Returns parameter name → checkpoint key.
    /// </summary>
    Dictionary<string, string> Match(IEnumerable<(string Key, long[] Shape)> tensors, string source)
    {
        var own = state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var byName = new Dictionary<string, (string Key, long[] Shape)>();
        var unexpected = new List<string>();
        foreach (var (key, shape) in tensors)
        {
            var name = NormalizeKey(key);
            if (name == "lm_head.weight" && lm_head is null && Config.Text.TieWordEmbeddings)
                continue;   // some exports keep the tied copy; it is the embedding matrix
            if (own.ContainsKey(name)) byName[name] = (key, shape);
            else unexpected.Add(key);
        }
        var missing = own.Keys.Where(k => !byName.ContainsKey(k)).ToList();
        var wrongShape = byName.Where(kv => !kv.Value.Shape.SequenceEqual(own[kv.Key]))
            .Select(kv => $"{kv.Key}: checkpoint [{string.Join(",", kv.Value.Shape)}], model [{string.Join(",", own[kv.Key])}]").ToList();
        if (missing.Count + unexpected.Count + wrongShape.Count > 0)
            throw new InvalidDataException($"{source}: the weights do not match the {Config.ModelType} configuration."
                + List("missing", missing) + List("unexpected", unexpected) + List("wrong shape", wrongShape));
        return byName.ToDictionary(kv => kv.Key, kv => kv.Value.Key);

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
