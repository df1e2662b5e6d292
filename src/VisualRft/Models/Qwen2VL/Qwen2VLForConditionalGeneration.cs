using TorchSharp;
using TorchSharp.Modules;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>Image features ready for the decoder: merged-token embeddings in the order of the batch's image-token
/// runs (row by row, left to right), and the image_grid_thw row of each image in the same order.</summary>
public sealed record ImageInputs(Tensor Embeds, Tensor GridThw);

/// <summary>
/// Qwen2-VL / Qwen2.5-VL for conditional generation (spec §3, §5, §7): <c>visual</c> (vision tower + merger),
/// <c>model</c> (Qwen2 decoder) and <c>lm_head</c> (absent when tied to <c>model.embed_tokens</c>). Module and
/// parameter names are those of the released checkpoints, so <c>state_dict()</c> keys equal the legacy Hugging Face
/// keys. Loading and saving live in the <c>Checkpoint</c> part, generation and log-probabilities in <c>Generation</c>.
/// </summary>
public sealed partial class Qwen2VLForConditionalGeneration : nn.Module
{
    public Qwen2VLConfig Config { get; }
    public readonly VisionTower visual;
    public readonly Qwen2TextModel model;
    public readonly Linear? lm_head;

    /// <summary>
    /// Allocates the modules with their weights uninitialised, like <c>torch.empty</c>: load them
    /// (<see cref="FromPretrained"/>, <see cref="LoadSafetensors"/>, <see cref="LoadWeights"/>) or initialise them
    /// (<see cref="Create"/>). Building the 2B model this way takes well under a second; initialising every layer
    /// on construction, as TorchSharp's modules do, took 40–100 s only to be overwritten.
    /// </summary>
    public Qwen2VLForConditionalGeneration(Qwen2VLConfig config, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Qwen2VLForConditionalGeneration))
    {
        Config = config;
        visual = new VisionTower(config.Vision, config.IsQwen25, device, dtype);
        model = new Qwen2TextModel(config.Text, device, dtype);
        if (!config.Text.TieWordEmbeddings)
            lm_head = Layer.Linear(config.Text.HiddenSize, config.Text.VocabSize, bias: false, device, dtype);
        RegisterComponents();
    }

    /// <summary>
    /// Gradient checkpointing (HF <c>gradient_checkpointing_enable()</c>): in a forward that records gradients, every
    /// decoder layer and vision block keeps only its input and recomputes its activations in the backward — one more
    /// forward's time for the memory of one block's activations instead of all of them. Generation is unaffected.
    /// </summary>
    public bool GradientCheckpointing
    {
        get => model.GradientCheckpointing;
        set => model.GradientCheckpointing = value;
    }

    // A recomputed block must compute what its first pass did; LoRA dropout would draw a second mask.
    void CheckRecomputable()
    {
        if (GradientCheckpointing && is_grad_enabled() && Adapters?.Config.Dropout is > 0 and var dropout)
            throw new InvalidOperationException($"gradient checkpointing cannot train adapters with lora_dropout {dropout}: the recomputed pass would "
                + "draw another dropout mask; use lora_dropout 0 (PEFT's default) or turn checkpointing off");
    }

    public Device Device => model.embed_tokens.weight.device;
    public ScalarType DType => model.embed_tokens.weight.dtype;

    /// <summary>Vision tower + merger: pixel_values [P,1176], image_grid_thw [n,3] → image embeddings [P/4, hidden].
    /// Compute once per image and reuse across the samples of a group.</summary>
    public Tensor EncodeImages(Tensor pixelValues, Tensor gridThw)
    {
        using var finalizers = FinalizerGate.Hold();
        CheckRecomputable();
        // A tower that nothing in trains builds no graph, and recomputing it would only cost time.
        var recompute = GradientCheckpointing && is_grad_enabled() && (Adapters?.TouchesVision == true || visual.parameters().Any(p => p.requires_grad));
        ThreadPolicy.Use(pixelValues.shape[0], Config.Vision.Width, Config.Vision.IntermediateSize, ElementSize);
        return visual.forward(pixelValues, gridThw, recompute);
    }

    /// <summary>Sets torch's threads (<see cref="ThreadPolicy"/>) for decoder work over <paramref name="tokens"/> rows: its
    /// typical operation is the MLP's gate/up product.</summary>
    internal void UseThreadsFor(long tokens) =>
        ThreadPolicy.Use(tokens, Config.Text.HiddenSize, 2L * Config.Text.IntermediateSize, ElementSize);

    int ElementSize => (int)model.embed_tokens.weight.ElementSize;

    /// <summary>M-RoPE positions [3,N,S] and rope deltas [N,1] (<see cref="RopeIndex"/>).</summary>
    public (Tensor PositionIds, Tensor RopeDeltas) GetRopeIndex(Tensor inputIds, Tensor? attentionMask, Tensor? gridThw) =>
        RopeIndex.Compute(inputIds, attentionMask, gridThw, Config);

    /// <summary>
    /// Full forward without cache: logits [N, S, vocab] (or of the last <paramref name="logitsToKeep"/> positions when
    /// it is positive, spec §5.6). Runs with gradient when autograd is enabled.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, ImageInputs? images = null, int logitsToKeep = 0)
    {
        using var scope = NewDisposeScope();
        var hidden = Hidden(inputIds, attentionMask, images);
        if (logitsToKeep > 0) hidden = hidden.narrow(1, hidden.shape[1] - logitsToKeep, logitsToKeep);
        return Logits(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>Final hidden states [N,S,H] of a full forward (no cache).</summary>
    internal Tensor Hidden(Tensor inputIds, Tensor? attentionMask, ImageInputs? images)
    {
        CheckRecomputable();
        using var scope = NewDisposeScope();
        UseThreadsFor(inputIds.numel());
        var mask = attentionMask ?? torch.ones_like(inputIds);
        var embeds = EmbedInputs(inputIds, images);
        var (pos, _) = GetRopeIndex(inputIds, mask, images?.GridThw);
        return model.forward(embeds, pos.to(Device), mask.to(Device)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Token embeddings with the image-token positions replaced by the image embeddings, in row-major order
    /// (HF masked_scatter, spec §5.1). The number of image tokens must equal the number of embedding rows.
    /// </summary>
    public Tensor EmbedInputs(Tensor inputIds, ImageInputs? images)
    {
        using var scope = NewDisposeScope();
        var ids = inputIds.to(Device);
        var e = model.embed_tokens.forward(ids);
        var isImage = ids.eq(Config.ImageTokenId);
        var count = isImage.sum().item<long>();
        var rows = images?.Embeds.shape[0] ?? 0;
        if (count != rows)
            throw new ArgumentException($"the input ids hold {count} image tokens ({Config.ImageTokenId}) but {rows} image embedding rows were given");
        if (images is not null)
        {
            if (images.Embeds.dim() != 2 || images.Embeds.shape[1] != Config.Text.HiddenSize)
                throw new ArgumentException($"image embeddings must be [n, {Config.Text.HiddenSize}], got [{string.Join(",", images.Embeds.shape)}]");
            e = e.masked_scatter(isImage.unsqueeze(-1).expand_as(e), images.Embeds.to(e.dtype, e.device));
        }
        return e.MoveToOuterDisposeScope();
    }

    /// <summary>lm_head, or the tied embedding matrix.</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is not null ? lm_head.Project(hidden) : Layer.Project(hidden, model.embed_tokens.weight);
}
