using System.Globalization;
using System.Text;
using TorchSharp;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using static TorchSharp.torch;

namespace VisualRft.Training;

/// <summary>The shape of a GRPO run, as far as memory is concerned (defaults: the reference step of qwen2vl-spec, a
/// 448 × 448 image = 256 merged image tokens and a 60-token prompt, G = 8, 256 new tokens).</summary>
public sealed record MemoryPlanOptions
{
    /// <summary>G, completions per prompt.</summary>
    public int NumGenerations { get; init; } = 8;
    /// <summary>Prompts sampled together (one micro-batch).</summary>
    public int Prompts { get; init; } = 1;
    /// <summary>Prompt tokens, image tokens included.</summary>
    public int PromptTokens { get; init; } = 316;
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Train LoRA adapters only (the reference is then the base with them off, no copy).</summary>
    public LoraConfig? Lora { get; init; }
    public bool FreezeVisionTower { get; init; }
    /// <summary>Whether the KL term needs a reference policy (GRPO's β ≠ 0).</summary>
    public bool Reference { get; init; } = true;
    public ScalarType DType { get; init; } = ScalarType.Float32;
}

/// <summary>
/// What a GRPO run holds in memory, counted from the config before any weight is loaded: the weights, the gradients and
/// AdamW's two moments of what trains, the reference copy, and the generation's key-value cache — exactly, in bytes, as
/// the trainer allocates them. Activations of the update are not counted yet, so <see cref="Total"/> is a lower bound:
/// a run it does not fit cannot fit, one it fits may still not.
/// </summary>
/// <param name="Parameters">Every parameter of the model.</param>
/// <param name="Trainable">The parameters the optimizer updates (the adapters under LoRA, all but the tower when frozen).</param>
/// <param name="Weights">Bytes of every parameter, adapters included.</param>
/// <param name="Gradients">Bytes of the trained parameters' gradients.</param>
/// <param name="Optimizer">Bytes of AdamW's two moments of each trained parameter.</param>
/// <param name="Reference">Bytes of the frozen reference copy (0 under LoRA, whose reference is the base with its adapters off, and without a KL term).</param>
/// <param name="KvCache">Bytes of the sampler's key-value cache: G rows per prompt over prompt + new tokens.</param>
/// <param name="Options">The run it was planned for.</param>
public sealed record MemoryPlan(long Parameters, long Trainable, long Weights, long Gradients, long Optimizer, long Reference, long KvCache,
    MemoryPlanOptions Options)
{
    public long Total => Weights + Gradients + Optimizer + Reference + KvCache;

    /// <summary>Counts <paramref name="config"/>'s parameters on torch's meta device (shapes only, no memory), so the
    /// count is the model's own, whatever the architecture.</summary>
    public static MemoryPlan For(Qwen2VLConfig config, MemoryPlanOptions? options = null)
    {
        var o = options ?? new MemoryPlanOptions();
        if (o.NumGenerations < 1 || o.Prompts < 1 || o.PromptTokens < 1 || o.MaxNewTokens < 1)
            throw new ArgumentException($"G, prompts, prompt tokens and new tokens must be positive, got {o.NumGenerations}, {o.Prompts}, {o.PromptTokens}, {o.MaxNewTokens}");
        Torch.TorchRuntime.EnsureLoaded();
        using var model = new Qwen2VLForConditionalGeneration(config, new Device(DeviceType.META), o.DType);
        long Count(IEnumerable<TorchSharp.Modules.Parameter> ps) => ps.Sum(p => p.numel());
        long all = Count(model.parameters()), vision = Count(model.visual.parameters());
        long element = model.parameters().First().ElementSize;
        long trainable = o.Lora is { } lora ? Count(model.AddLora(lora).parameters()) : all - (o.FreezeVisionTower ? vision : 0);
        long adapters = o.Lora is null ? 0 : trainable;
        var t = config.Text;
        long rows = (long)o.Prompts * o.NumGenerations, positions = o.PromptTokens + o.MaxNewTokens;
        long kv = 2L * t.NumHiddenLayers * rows * t.NumKeyValueHeads * positions * t.HeadDim * element;
        return new MemoryPlan(all + adapters, trainable, (all + adapters) * element, trainable * element, 2 * trainable * element,
            o.Reference && o.Lora is null ? all * element : 0, kv, o);
    }

    /// <summary>Why the run cannot fit in <paramref name="gib"/> GiB, or null when this lower bound fits.</summary>
    public string? Refusal(double gib) => Total <= gib * (1L << 30) ? null
        : $"needs at least {Gib(Total)} before activations ({Parts()}), more than the {gib.ToString("0.#", CultureInfo.InvariantCulture)} GiB given; "
          + (Options.Lora is null ? "train LoRA adapters (--lora R), freeze the vision tower, or " : "") + "use a larger GPU";

    string Parts() => string.Join(", ", Rows().Where(r => r.Bytes > 0).Select(r => $"{r.Name} {Gib(r.Bytes)}"));

    IEnumerable<(string Name, long Bytes, string What)> Rows() =>
    [
        ("weights", Weights, $"{Parameters:N0} parameters"),
        ("gradients", Gradients, $"{Trainable:N0} trained"),
        ("AdamW moments", Optimizer, "2 per trained parameter"),
        ("reference", Reference, Options.Lora is not null ? "the base with adapters off (no copy)" : Options.Reference ? "a frozen copy for the KL term" : "none (β = 0)"),
        ("KV cache", KvCache, $"{Options.Prompts * Options.NumGenerations} rows × {Options.PromptTokens + Options.MaxNewTokens} positions"),
    ];

    static string Gib(long bytes) => bytes >= 1L << 30 ? (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

    public override string ToString()
    {
        var sb = new StringBuilder($"| {Options.DType} | memory | |\n|---|---|---|\n");
        foreach (var (name, bytes, what) in Rows()) sb.Append($"| {name} | {Gib(bytes)} | {what} |\n");
        return sb.Append($"| total (before activations) | {Gib(Total)} | a lower bound: the update's activations come on top |\n").ToString();
    }
}
