using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using VisualRft.IO;
using static TorchSharp.torch;

namespace VisualRft.Models;

/// <summary>
/// LoRA settings as PEFT's <c>LoraConfig</c> names them (Hu et al. 2021; peft/tuners/lora/config.py): rank <c>r</c>,
/// <c>lora_alpha</c> (the update is scaled by alpha / r), <c>lora_dropout</c> on the adapter's input, and the
/// <c>target_modules</c> matched against the last part of a module's name. PEFT's default for Qwen2 is q_proj and v_proj.
/// </summary>
public sealed record LoraConfig
{
    public int R { get; init; } = 8;
    public double Alpha { get; init; } = 8;
    public double Dropout { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    public double Scale => Alpha / R;

    public LoraConfig Validate()
    {
        if (R < 1) throw new ArgumentOutOfRangeException(nameof(R), R, "the LoRA rank must be at least 1");
        if (!double.IsFinite(Alpha) || Alpha <= 0) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "lora_alpha must be a positive number");
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "lora_dropout must be in [0, 1)");
        if (TargetModules.Count == 0) throw new ArgumentException("name at least one target module, e.g. q_proj", nameof(TargetModules));
        return this;
    }
}

/// <summary>
/// LoRA adapters on a model's linear layers: for a target layer y = W·x + b + (alpha / r)·B·A·dropout(x), with A [r, in]
/// initialised as PEFT does (Kaiming-uniform, a = √5) and B [out, r] zero, so that at first the model computes exactly
/// what the base computes. The base weights are frozen; only A and B train. The adapters are not part of the model's
/// <c>state_dict</c> (its Hugging Face checkpoint stays the base); they are saved in PEFT's layout (<see cref="Save"/>) so
/// that <c>peft.PeftModel.from_pretrained</c> reads them, merged into the base weights (<see cref="Merge"/>), or switched
/// off for a while (<see cref="Disable"/>), which makes the model its own GRPO reference without a second copy.
/// </summary>
public sealed class LoraAdapters : nn.Module
{
    /// <summary>The adapter of each adapted layer, found by <c>Layer.Project</c> and the
    /// stacked projections at forward time.</summary>
    static readonly ConditionalWeakTable<Linear, LoraLayer> OfLayer = new();

    readonly List<LoraLayer> layers = [];
    int disabled;

    public LoraConfig Config { get; }

    /// <summary>The adapted layers' module names, as the base model names them (e.g. model.layers.0.self_attn.q_proj).</summary>
    public IReadOnlyList<string> ModuleNames => [.. layers.Select(l => l.ModuleName)];

    /// <summary>Whether some adapted layer is in the vision tower (then images must be encoded again with the adapters off).</summary>
    public bool TouchesVision => layers.Any(l => l.ModuleName.StartsWith("visual.", StringComparison.Ordinal));

    /// <summary>False inside a <see cref="Disable"/> section.</summary>
    public bool Enabled => Volatile.Read(ref disabled) == 0;

    LoraAdapters(LoraConfig config) : base(nameof(LoraAdapters)) => Config = config;

    /// <summary>Adds adapters to every linear layer of <paramref name="model"/> whose name ends with a target module, and
    /// freezes every base parameter. <paramref name="seed"/> makes A's initialisation reproducible.</summary>
    public static LoraAdapters Attach(nn.Module model, LoraConfig config, long seed = 0)
    {
        config.Validate();
        var adapters = new LoraAdapters(config);
        var targets = model.named_modules().Where(m => m.module is Linear && config.TargetModules.Contains(m.name.Split('.')[^1])).ToList();
        if (targets.Count == 0)
            throw new ArgumentException($"no linear layer of the model is named {string.Join(" or ", config.TargetModules)} (e.g. q_proj, v_proj, gate_proj of the decoder)");
        foreach (var (name, module) in targets)
            if (OfLayer.TryGetValue((Linear)module, out _))
                throw new InvalidOperationException($"{name} already has a LoRA adapter; merge or dispose the model's adapters first");
        using (no_grad())
            foreach (var (name, module) in targets)
            {
                var linear = (Linear)module;
                var (outFeatures, inFeatures) = (linear.weight!.shape[0], linear.weight.shape[1]);
                using var generator = new Generator((ulong)seed, linear.weight.device);
                // PEFT's kaiming_uniform_(a = √5): gain √(2 / (1 + 5)) times √(3 / fan_in), i.e. U(−1/√in, 1/√in)
                var bound = 1 / Math.Sqrt(inFeatures);
                var a = new Parameter(empty(config.R, inFeatures, linear.weight.dtype, linear.weight.device).uniform_(-bound, bound, generator));
                seed++;
                var b = new Parameter(zeros(outFeatures, config.R, linear.weight.dtype, linear.weight.device));
                var layer = new LoraLayer(adapters, name, linear, a, b);
                adapters.layers.Add(layer);
                adapters.register_parameter(PeftKey(name, "A"), a);
                adapters.register_parameter(PeftKey(name, "B"), b);
                OfLayer.Add(linear, layer);
            }
        foreach (var p in model.parameters()) p.requires_grad = false;
        return adapters;
    }

    /// <summary>The adapter of <paramref name="linear"/> while its adapters are enabled, else null.</summary>
    internal static LoraLayer? Active(Linear linear) => OfLayer.TryGetValue(linear, out var l) && l.Owner.Enabled ? l : null;

    /// <summary>PEFT's key of an adapter weight: <c>base_model.model.{module}.lora_A.weight</c> (safetensors, no adapter name).
    /// TorchSharp parameter names may not contain dots, so the module keeps them with '|' and <see cref="Save"/> restores them.</summary>
    static string PeftKey(string module, string ab) => $"base_model|model|{module.Replace('.', '|')}|lora_{ab}|weight";

    /// <summary>The adapter weights under PEFT's keys (<c>base_model.model.{module}.lora_A.weight</c>).</summary>
    public IEnumerable<(string Key, Parameter Weight)> Weights() => named_parameters().Select(p => (p.name.Replace('|', '.'), p.parameter));

    /// <summary>A section in which the model computes as its base: the GRPO reference's log-probs, a base-model evaluation.</summary>
    public IDisposable Disable()
    {
        Interlocked.Increment(ref disabled);
        return new Section(() => Interlocked.Decrement(ref disabled));
    }

    sealed class Section(Action end) : IDisposable
    {
        int done;
        public void Dispose() { if (Interlocked.Exchange(ref done, 1) == 0) end(); }
    }

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> as PEFT's <c>save_pretrained</c> does.</summary>
    public void Save(string folder, string baseModel = "")
    {
        Directory.CreateDirectory(folder);
        var config = new PeftConfig
        {
            BaseModelNameOrPath = baseModel, R = Config.R, LoraAlpha = Config.Alpha, LoraDropout = Config.Dropout,
            TargetModules = [.. Config.TargetModules],
        };
        AtomicFile.WriteAllText(Path.Combine(folder, "adapter_config.json"), JsonSerializer.Serialize(config, Json));
        var tensors = Weights().ToDictionary(w => w.Key, w => (Tensor)w.Weight);
        SafeTensors.Save(Path.Combine(folder, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Reads a PEFT LoRA adapter folder onto <paramref name="model"/>; a key, shape or setting it cannot use is named.</summary>
    public static LoraAdapters Load(nn.Module model, string folder)
    {
        var configPath = Path.Combine(folder, "adapter_config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder} has no adapter_config.json (a PEFT adapter folder)", configPath);
        var peft = JsonSerializer.Deserialize<PeftConfig>(File.ReadAllText(configPath), Json)
            ?? throw new InvalidDataException($"{configPath}: not a PEFT adapter config");
        if (peft.PeftType != "LORA") throw new InvalidDataException($"{configPath}: peft_type {peft.PeftType}; only LORA adapters load here");
        if (peft.UseDora || peft.UseRslora) throw new InvalidDataException($"{configPath}: use_dora / use_rslora adapters are not supported");
        var trainable = model.parameters().Select(p => p.requires_grad).ToArray();
        var adapters = Attach(model, new LoraConfig { R = peft.R, Alpha = peft.LoraAlpha, Dropout = peft.LoraDropout, TargetModules = peft.TargetModules });
        var weights = SafeTensors.Load(Path.Combine(folder, "adapter_model.safetensors"));
        try
        {
            // transformers ≥ 4.52 names Qwen2-VL's decoder model.language_model and its tower model.visual; the port keeps
            // the checkpoints' names (model., visual.), so both spellings of a key are accepted.
            static string Legacy(string key) => key.Replace("base_model.model.model.language_model.", "base_model.model.model.")
                .Replace("base_model.model.model.visual.", "base_model.model.visual.");
            var byKey = weights.ToDictionary(w => Legacy(w.Key), w => w.Value);
            using (no_grad())
                foreach (var (key, p) in adapters.Weights())
                {
                    if (!byKey.TryGetValue(key, out var w)) throw new InvalidDataException($"{folder}: adapter_model.safetensors has no {key}");
                    if (!w.shape.SequenceEqual(p.shape))
                        throw new InvalidDataException($"{folder}: {key} is [{string.Join(", ", w.shape)}], the model needs [{string.Join(", ", p.shape)}]");
                    p.copy_(w);
                }
            var unused = byKey.Keys.Except(adapters.Weights().Select(w => w.Key)).ToList();
            if (unused.Count > 0) throw new InvalidDataException($"{folder}: {unused.Count} adapter weights match no layer of the model (first: {unused[0]})");
        }
        catch
        {
            // nothing of a failed load stays on the model: no adapters, the base as trainable as it was
            adapters.Dispose();
            foreach (var (p, t) in model.parameters().Zip(trainable)) p.requires_grad = t;
            throw;
        }
        finally
        {
            foreach (var w in weights.Values) w.Dispose();
        }
        return adapters;
    }

    /// <summary>Adds each adapter's update into its base weight (W += alpha / r · B·A) and removes the adapters: the model
    /// then computes what it computed with them, as a plain checkpoint. Base parameters stay frozen; unfreeze to train them.</summary>
    public void Merge()
    {
        using (no_grad())
            foreach (var layer in layers)
            {
                using var delta = layer.B.matmul(layer.A).mul_(Config.Scale);
                layer.Target.weight!.add_(delta);
            }
        Dispose();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (var layer in layers) OfLayer.Remove(layer.Target);
        layers.Clear();
        base.Dispose(disposing);
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The fields of PEFT's adapter_config.json for LoRA (peft/tuners/lora/config.py), with PEFT's defaults.</summary>
    sealed class PeftConfig
    {
        [JsonPropertyName("peft_type")] public string PeftType { get; set; } = "LORA";
        [JsonPropertyName("task_type")] public string TaskType { get; set; } = "CAUSAL_LM";
        [JsonPropertyName("base_model_name_or_path")] public string BaseModelNameOrPath { get; set; } = "";
        [JsonPropertyName("r")] public int R { get; set; } = 8;
        [JsonPropertyName("lora_alpha")] public double LoraAlpha { get; set; } = 8;
        [JsonPropertyName("lora_dropout")] public double LoraDropout { get; set; }
        [JsonPropertyName("target_modules")] public List<string> TargetModules { get; set; } = [];
        [JsonPropertyName("bias")] public string Bias { get; set; } = "none";
        [JsonPropertyName("fan_in_fan_out")] public bool FanInFanOut { get; set; }
        [JsonPropertyName("init_lora_weights")] public bool InitLoraWeights { get; set; } = true;
        [JsonPropertyName("inference_mode")] public bool InferenceMode { get; set; } = true;
        [JsonPropertyName("use_rslora")] public bool UseRslora { get; set; }
        [JsonPropertyName("use_dora")] public bool UseDora { get; set; }
        [JsonPropertyName("modules_to_save")] public List<string>? ModulesToSave { get; set; }
    }
}

/// <summary>One layer's adapter: A [r, in], B [out, r].</summary>
internal sealed class LoraLayer(LoraAdapters owner, string moduleName, Linear target, Parameter a, Parameter b)
{
    /// <summary>The base layer whose product this adapter adds to.</summary>
    public Linear Target { get; } = target;
    public LoraAdapters Owner { get; } = owner;
    public string ModuleName { get; } = moduleName;
    public Parameter A { get; } = a;
    public Parameter B { get; } = b;

    /// <summary>alpha / r · B·A·dropout(x); dropout acts only while autograd records (the update pass), as PEFT's does in
    /// training mode.</summary>
    public Tensor Delta(Tensor x)
    {
        using var scope = NewDisposeScope();
        var input = Owner.Config.Dropout > 0 && is_grad_enabled() ? nn.functional.dropout(x, Owner.Config.Dropout, training: true) : x;
        return nn.functional.linear(nn.functional.linear(input, A), B).mul(Owner.Config.Scale).MoveToOuterDisposeScope();
    }
}
