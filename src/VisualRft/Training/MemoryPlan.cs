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
    /// <summary>Recompute each block in the backward (<see cref="Grpo.GrpoOptions.GradientCheckpointing"/>).</summary>
    public bool GradientCheckpointing { get; init; }
    /// <summary>Vision-tower rows of one prompt's image: patches of 14 × 14 pixels before the 2 × 2 merge (448 × 448 = 1,024).</summary>
    public int ImagePatches { get; init; } = 1024;
    /// <summary>The weights' dtype; bf16 or fp16 weights train on float32 master weights (<see cref="PolicyOptimizer"/>).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
}

/// <summary>
/// What a GRPO run holds in memory, counted from the config before any weight is loaded: the weights, the gradients and
/// AdamW's two moments of what trains (with float32 master weights under bf16), the reference copy, the generation's
/// key-value cache — exactly, in bytes, as the trainer allocates them — and the update's activations, estimated from
/// what each operation of this port's forward keeps for its backward (<see cref="ActivationBytes"/>); bench/ `memory`
/// compares that estimate with the measured peak.
/// </summary>
/// <param name="Parameters">Every parameter of the model.</param>
/// <param name="Trainable">The parameters the optimizer updates (the adapters under LoRA, all but the tower when frozen).</param>
/// <param name="Weights">Bytes of every parameter, adapters included.</param>
/// <param name="Gradients">Bytes of the trained parameters' gradients.</param>
/// <param name="MasterWeights">Bytes of the float32 master copies of half-precision trained weights (0 in float32); their
/// float32 gradients, as large, live during the optimizer step.</param>
/// <param name="Optimizer">Bytes of AdamW's two moments of each trained parameter (float32 under master weights).</param>
/// <param name="Reference">Bytes of the frozen reference copy (0 under LoRA, whose reference is the base with its adapters off, and without a KL term).</param>
/// <param name="KvCache">Bytes of the sampler's key-value cache: G rows per prompt over prompt + new tokens.</param>
/// <param name="Activations">Bytes the update's graph holds at the start of its backward.</param>
/// <param name="LateActivations">The part of them the backward reaches last, alive until every gradient has been made: the
/// prompt pass and the vision tower (the completions, which attend to the prompt's cache, are differentiated first), or
/// under checkpointing every layer's kept input.</param>
/// <param name="Options">The run it was planned for.</param>
public sealed record MemoryPlan(long Parameters, long Trainable, long Weights, long Gradients, long MasterWeights, long Optimizer, long Reference,
    long KvCache, long Activations, long LateActivations, MemoryPlanOptions Options)
{
    /// <summary>The update's peak: every activation as the backward starts, or the gradients once made beside the
    /// activations the backward reaches last, or during the optimizer step the gradients and their float32 copies for the
    /// master weights.</summary>
    public long UpdatePeak => Math.Max(Activations, Gradients + Math.Max(LateActivations, MasterWeights));

    /// <summary>The run's peak: what lives through it (weights, master weights, AdamW moments, reference), plus the larger
    /// of the generation's cache and the update's peak — the cache is freed before the update, the gradients after it.</summary>
    public long Total => Weights + MasterWeights + Optimizer + Reference + Math.Max(KvCache, UpdatePeak);

    /// <summary>Counts <paramref name="config"/>'s parameters on torch's meta device (shapes only, no memory), so the
    /// count is the model's own, whatever the architecture.</summary>
    public static MemoryPlan For(Qwen2VLConfig config, MemoryPlanOptions? options = null)
    {
        var o = options ?? new MemoryPlanOptions();
        if (o.NumGenerations < 1 || o.Prompts < 1 || o.PromptTokens < 1 || o.MaxNewTokens < 1 || o.ImagePatches < 0)
            throw new ArgumentException($"G, prompts, prompt tokens and new tokens must be positive and image patches not negative, got {o.NumGenerations}, "
                + $"{o.Prompts}, {o.PromptTokens}, {o.MaxNewTokens}, {o.ImagePatches}");
        Torch.TorchRuntime.EnsureLoaded();
        using var model = new Qwen2VLForConditionalGeneration(config, new Device(DeviceType.META), o.DType);
        long Count(IEnumerable<TorchSharp.Modules.Parameter> ps) => ps.Sum(p => p.numel());
        long all = Count(model.parameters()), vision = Count(model.visual.parameters());
        long element = model.parameters().First().ElementSize;
        var adapted = o.Lora is { } lora ? model.AddLora(lora).ModuleNames.ToHashSet() : null;
        long trainable = adapted is not null ? Count(model.Adapters!.parameters()) : all - (o.FreezeVisionTower ? vision : 0);
        long adapters = adapted is null ? 0 : trainable;
        var t = config.Text;
        long rows = (long)o.Prompts * o.NumGenerations, positions = o.PromptTokens + o.MaxNewTokens;
        long kv = 2L * t.NumHiddenLayers * rows * t.NumKeyValueHeads * positions * t.HeadDim * element;
        var master = element < 4 ? trainable * 4 : 0;
        var (activations, late) = ActivationBytes(config, o, element, adapted);
        return new MemoryPlan(all + adapters, trainable, (all + adapters) * element, trainable * element, master,
            2 * trainable * Math.Max(element, 4), o.Reference && adapted is null ? all * element : 0, kv, activations, late, o);
    }

    /// <summary>
    /// The update's activations: what the forward of the policy's log-probs keeps for the backward, added up operation by
    /// operation as this port computes it (spec of each in the comments), at the moment the backward starts — the
    /// log-softmax output and the first gradients of the logits are then alive beside every saved tensor. A weight that
    /// does not train needs no saved input (its gradient is not computed), which is why LoRA and a frozen tower keep less.
    /// Attention is counted as the fused kernels keep it (inputs, output and log-sum-exp, no score matrix).
    /// </summary>
    internal static (long All, long Late) ActivationBytes(Qwen2VLConfig config, MemoryPlanOptions o, long e, IReadOnlySet<string>? adapted)
    {
        var t = config.Text;
        long h = t.HiddenSize, i = t.IntermediateSize, q = (long)t.NumAttentionHeads * t.HeadDim, k = (long)t.NumKeyValueHeads * t.HeadDim;
        long b = o.Prompts, n = b * o.NumGenerations, p = o.PromptTokens, c = o.MaxNewTokens;
        var full = adapted is null;
        bool Adapted(string module) => adapted?.Contains($"model.layers.0.{module}") == true;
        bool Saves(params string[] modules) => full || modules.Any(Adapted);
        long f32 = Math.Max(e, 4);
        long rank = o.Lora?.R ?? 0;
        // Per row of one decoder layer: each RMSNorm keeps its float32 input and, when its weight trains, the normalised
        // value; a linear keeps its input only when its weight trains or carries an adapter; q/k/v come out of one
        // product whose output stays alive through v, the rotated q and k through k, the query copy folded for GQA and
        // the attention output through the attention's backward; the MLP keeps gate·up, silu(gate) and their product.
        long norm = h * f32 + (full ? h * e : 0);
        long perRow = 2 * norm
            + (Saves("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj") ? h * e : 0)
            + (q + 2 * k) * e + (q + k) * e + q * e + q * e + (Saves("self_attn.o_proj") ? q * e : 0)
            + (Saves("mlp.gate_proj", "mlp.up_proj") ? h * e : 0) + 3 * i * e + (Saves("mlp.down_proj") ? i * e : 0)
            + rank * e * new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" }
                .Count(Adapted);
        // A full-parameter layer's stacked q/k/v and gate/up weights are concatenated for the product, and the copy is kept.
        long perLayer = full ? ((q + 2 * k) + 2 * i) * h * e : 0;
        long layers = t.NumHiddenLayers;
        long Layers(long rowCount) => layers * (rowCount * perRow + perLayer);
        long decoder, late;
        if (o.GradientCheckpointing)
        {
            // Every row runs prompt + completion in one pass; each layer keeps its input, and TorchSharp's autograd function
            // an empty tensor shaped like its output (to hand zeros to the backward); one layer is recomputed at a time.
            long r = n * (p + c);
            decoder = layers * 2 * r * h * e + r * perRow + perLayer;
            late = decoder;
        }
        else
        {
            // The prompt runs once per prompt into a key-value cache, repeated G times for the completions, which attend to it.
            decoder = Layers(b * p + n * c) + layers * 2 * k * e * (b * p + n * (p + c));
            late = Layers(b * p) + layers * 2 * k * e * b * p;
        }
        // The additive attention bias of the completion pass, [N, 1, g·C, P + C], kept by every layer's attention.
        decoder += n * (t.NumAttentionHeads / t.NumKeyValueHeads) * c * (p + c) * e;
        // Final norm and the head over the completion positions, then float32 logits: the log-softmax output is kept; the
        // backward starts with the gathered gradient and the log-softmax gradient, both vocabulary-wide.
        long logits = n * c * (h * f32 + (full ? 2 * h * e : 0) + t.VocabSize * (3 * 4 + (e < 4 ? e : 0)));
        // The vision tower, when it trains, once per prompt: per block and patch row LayerNorm inputs and outputs, q/k/v and
        // the rotated q and k, the attention output and its reshaped copy, and the MLP's fc1 output, gate and activation;
        // once, the patch embedding's input pixels and the merger's norm, products and GELU.
        var v = config.Vision;
        var towerTrains = full ? !o.FreezeVisionTower : adapted!.Any(m => m.StartsWith("visual.", StringComparison.Ordinal));
        long vRows = b * o.ImagePatches;
        long vPerRow = (11L * v.Width + 3L * v.IntermediateSize) * e;
        long ends = vRows * (v.PatchDim + 4L * v.Width) * e;
        long tower = !towerTrains ? 0 : ends + (o.GradientCheckpointing ? v.Depth * 2 * vRows * v.Width * e + vRows * vPerRow : v.Depth * vRows * vPerRow);
        return (decoder + logits + tower, late + tower);
    }

    /// <summary>Why the run cannot fit in <paramref name="gib"/> GiB, or null when it fits.</summary>
    public string? Refusal(double gib) => Total <= gib * (1L << 30) ? null
        : $"needs about {Gib(Total)} ({Parts()}), more than the {gib.ToString("0.#", CultureInfo.InvariantCulture)} GiB given; "
          + (Options.GradientCheckpointing ? "" : "turn on gradient checkpointing (--checkpointing), ")
          + (Options.Lora is null ? "train LoRA adapters (--lora R), freeze the vision tower, " : "") + "use fewer or shorter completions, or a larger GPU";

    string Parts() => string.Join(", ", Rows().Where(r => r.Bytes > 0).Select(r => $"{r.Name} {Gib(r.Bytes)}"));

    IEnumerable<(string Name, long Bytes, string What)> Rows() =>
    [
        ("weights", Weights, $"{Parameters:N0} parameters"),
        ("gradients", Gradients, $"{Trainable:N0} trained"),
        ("master weights", MasterWeights, "float32 copies of the trained weights (their gradients, as large, during the step)"),
        ("AdamW moments", Optimizer, "2 per trained parameter"),
        ("reference", Reference, Options.Lora is not null ? "the base with adapters off (no copy)" : Options.Reference ? "a frozen copy for the KL term" : "none (β = 0)"),
        ("KV cache", KvCache, $"{Options.Prompts * Options.NumGenerations} rows × {Options.PromptTokens + Options.MaxNewTokens} positions"),
        ("activations", Activations, $"the update's, at the start of its backward{(Options.GradientCheckpointing ? ", checkpointed" : "")} (an estimate; bench/ `memory`)"),
    ];

    static string Gib(long bytes) => bytes >= 1L << 30 ? (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

    public override string ToString()
    {
        var sb = new StringBuilder($"| {Options.DType} | memory | |\n|---|---|---|\n");
        foreach (var (name, bytes, what) in Rows()) sb.Append($"| {name} | {Gib(bytes)} | {what} |\n");
        return sb.Append($"| peak | {Gib(Total)} | weights, masters, moments and reference, plus the larger of the cache and the update's peak |\n").ToString();
    }
}
