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
        var m = new Qwen2VLForConditionalGeneration(config, device ?? TorchRuntime.DefaultDevice(), type);
        try
        {
            m.LoadFiles(SafeTensors.FolderFiles(folder), folder);
            return m;
        }
        catch
        {
            m.Dispose();
            throw;
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
        // Tensors stored in another dtype are converted one file at a time beside the parameters (see LoadFiles).
        var name = SafeTensors.DTypeName(dtype);
        long converted = headers.Values.Where(h => h.Info.DType != name).GroupBy(h => h.File)
            .Select(f => f.Sum(h => h.Info.Shape.Aggregate(1L, (a, b) => a * b)) * probe.ElementSize).DefaultIfEmpty(0).Max();
        if (bytes + converted > IO.MemoryBudget.AvailableBytes)
            throw new InsufficientMemoryException($"{folder}: the weights take {IO.MemoryBudget.Format(bytes)} as {dtype}"
                + (converted > 0 ? $", and {IO.MemoryBudget.Format(converted)} more while a file is converted," : ",")
                + $" more than the {IO.MemoryBudget.Format(IO.MemoryBudget.AvailableBytes)} of memory here");
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
    public void LoadSafetensors(string path) => LoadFiles([path], path);

    /// <summary>
    /// Reads safetensors files into the parameters, strictly (as <see cref="LoadWeights"/>, checked from the headers
    /// before any data is read). A tensor stored in the parameter's dtype goes from the file straight into the
    /// parameter's memory, so that loading costs one read of the file: no second copy of the checkpoint in memory.
    /// Other tensors (another dtype, or a parameter off the CPU) are read and converted one file at a time.
    /// </summary>
    void LoadFiles(IReadOnlyList<string> files, string source)
    {
        var headers = files.Select(f => (Path: f, Header: SafeTensors.ReadHeader(f))).ToList();
        var own = state_dict();
        var problem = Mismatch(Config, own.ToDictionary(kv => kv.Key, kv => kv.Value.shape), headers.SelectMany(h => h.Header.Tensors)
            .Select(t => (t.Name, t.Shape, SafeTensors.IsFloatingPoint(t.DType) ? null : t.DType)));
        if (problem is not null) throw new InvalidDataException($"{source}: the weights do not match the {Config.ModelType} configuration.{problem}");
        var fileType = SafeTensors.DTypeName(DType);
        using var _ = torch.no_grad();
        foreach (var (path, (tensors, dataStart, _)) in headers)
        {
            var convert = new HashSet<string>();
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
                foreach (var t in tensors)
                {
                    if (!own.TryGetValue(NormalizeKey(t.Name), out var p)) continue;   // a tied lm_head copy
                    if (t.DType == fileType && p.device_type == DeviceType.CPU && p.is_contiguous()) ReadInto(fs, dataStart + t.Begin, p);
                    else convert.Add(t.Name);
                }
            if (convert.Count == 0) continue;
            foreach (var (key, t) in SafeTensors.Load(path, DType, convert.Contains))
                using (t) own[NormalizeKey(key)].copy_(t);
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
