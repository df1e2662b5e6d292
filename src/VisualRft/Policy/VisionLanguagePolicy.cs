using TorchSharp;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Imaging;
using VisualRft.Models.Qwen2VL;
using VisualRft.Text;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Policy;

/// <summary>
/// A vision-language policy: a Qwen2-VL-family model with its processor (tokenizer, chat template, image processor)
/// and stop tokens. This is what a trainer samples from and updates, at every size from the tiny CPU model to 7B.
/// </summary>
public sealed class VisionLanguagePolicy : IDisposable
{
    public Qwen2VLForConditionalGeneration Model { get; }
    public Qwen2VLProcessor Processor { get; }

    /// <summary>Generation stops at <c>&lt;|im_end|&gt;</c> or <c>&lt;|endoftext|&gt;</c> (visual-rft-spec §2.2).</summary>
    public IReadOnlyList<long> StopTokenIds { get; }

    public VisionLanguagePolicy(Qwen2VLForConditionalGeneration model, Qwen2VLProcessor processor)
    {
        Model = model;
        Processor = processor;
        var tok = processor.Tokenizer;
        Compatible(model.Config, processor, e => new ArgumentException(e));
        StopTokenIds = new long[] { tok.RequireId(Qwen2Tokenizer.ImEnd), tok.RequireId(Qwen2Tokenizer.EndOfText) };
    }

    /// <summary>A view of <paramref name="adapted"/>'s model with its LoRA adapters off: the base, sharing the weights.</summary>
    VisionLanguagePolicy(VisionLanguagePolicy adapted) : this(adapted.Model, adapted.Processor) => _baseView = true;

    // True for the view of an adapted model as its base (Reference): every torch call runs with the adapters off, and
    // disposing it leaves the shared model alone.
    readonly bool _baseView;

    IDisposable? AsBase() => _baseView ? Model.Adapters?.Disable() : null;

    /// <summary>The parameters an optimizer trains: the model's unfrozen ones and its LoRA adapters' (named lora:…).</summary>
    public IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> TrainableParameters() =>
        Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))
            .Concat(Model.Adapters?.Weights().Select(w => ("lora:" + w.Key, w.Weight)) ?? []);

    /// <summary>The reference of the KL term: with LoRA adapters, this same model with them off (no second copy, as PEFT
    /// and TRL do it); otherwise a frozen copy (<see cref="FrozenCopy"/>).</summary>
    public VisionLanguagePolicy Reference() => Model.Adapters is null ? FrozenCopy() : new VisionLanguagePolicy(this);

    static void Compatible(Qwen2VLConfig config, Qwen2VLProcessor processor, Func<string, Exception> error)
    {
        var tok = processor.Tokenizer;
        // A processor cutting other patches than the vision tower reads makes grids the model refuses at the first batch.
        var (ip, v) = (processor.ImageProcessor, config.Vision);
        if ((ip.PatchSize, ip.TemporalPatchSize, ip.MergeSize) != (v.PatchSize, v.TemporalPatchSize, v.SpatialMergeSize))
            throw error($"the image processor (preprocessor_config.json) cuts patch_size {ip.PatchSize}, temporal_patch_size {ip.TemporalPatchSize}, " +
                        $"merge_size {ip.MergeSize}, but the model (config.json vision_config) reads patch_size {v.PatchSize}, " +
                        $"temporal_patch_size {v.TemporalPatchSize}, spatial_merge_size {v.SpatialMergeSize}");
        if (tok.VocabSize > config.Text.VocabSize)
            throw error($"the tokenizer has {tok.VocabSize} tokens but the model's vocabulary is {config.Text.VocabSize}");
        var image = tok.RequireId(Qwen2Tokenizer.ImagePad);
        if (image != config.ImageTokenId)
            throw error($"the tokenizer's {Qwen2Tokenizer.ImagePad} is id {image} but the model config says image_token_id {config.ImageTokenId}");
    }

    /// <summary>Loads a local Hugging Face folder (weights, config, tokenizer, preprocessor config).</summary>
    public static VisionLanguagePolicy FromPretrained(string folder, Device? device = null) =>
        new(Qwen2VLForConditionalGeneration.FromPretrained(folder, device), Qwen2VLProcessor.FromFolder(folder));

    /// <summary>Checks what <see cref="FromPretrained"/> would load without allocating the model
    /// (<see cref="Qwen2VLForConditionalGeneration.CheckFolder"/>, the tokenizer and preprocessor files, and that they fit
    /// the config), so that a command can refuse a bad folder before it starts its work.</summary>
    public static void Check(string folder)
    {
        var config = Qwen2VLForConditionalGeneration.CheckFolder(folder);
        try { Compatible(config, Qwen2VLProcessor.FromFolder(folder), e => new InvalidDataException($"{folder}: {e}")); }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException) { throw new InvalidDataException($"{folder}: {e.Message}", e); }
    }

    public Device Device => Model.Device;

    /// <summary>The frame the model writes boxes in: 0–1000 for Qwen2-VL, resized-image pixels for Qwen2.5-VL (spec §3.2).</summary>
    public CoordinateFrame AnswerFrame => Model.Config.IsQwen25 ? CoordinateFrame.ResizedPixels : CoordinateFrame.Normalized1000;
    public int PadTokenId => Processor.PadTokenId;

    /// <summary>
    /// The prompts of <paramref name="samples"/>, rendered with the chat template and left padded, each with its own image or
    /// with <paramref name="images"/>[i] instead (to see what a model makes of another image).
    /// </summary>
    public ProcessorBatch Encode(IReadOnlyList<VisualSample> samples, IReadOnlyList<RgbImage>? images = null) =>
        Processor.Process(samples.Select((s, i) => (images?[i] ?? s.Image, s.Problem)).ToList());

    /// <summary>The vision tower's output for a processed batch, on the model's device (with gradient when autograd is on).</summary>
    public ImageInputs EncodeImages(ProcessorBatch batch)
    {
        var images = batch.Images ?? throw new ArgumentException("the batch has no images", nameof(batch));
        CheckGrids(images, batch);
        using var asBase = AsBase();
        var grid = images.GridThwTensor();
        return new ImageInputs(Model.EncodeImages(batch.PixelValuesTensor()!.to(Device), grid), grid);
    }

    /// <summary>
    /// The prompts of a GRPO rollout on the model's device, refused by sample id when one is longer than
    /// <paramref name="maxPromptLength"/>, with each prompt's image encoded on its own (with gradient when autograd is on) so
    /// that each prompt's graph can be freed by its own backward. The official trainer keeps the last
    /// <c>max_prompt_length</c> prompt columns but generates from the whole prompt, so a longer prompt shifts its completion
    /// slice into the prompt (spec §2.1); cutting image tokens would break the model instead. Either way the run is
    /// wrong, so a prompt over the limit is an error here.
    /// </summary>
    internal PromptTensors EncodePrompts(IReadOnlyList<VisualSample> samples, int maxPromptLength)
    {
        if (samples.Count == 0) throw new ArgumentException("no prompts", nameof(samples));
        var batch = Encode(samples);
        for (int b = 0; b < samples.Count; b++)
            if (batch.PromptLengths[b] > maxPromptLength)
                throw new ArgumentException($"sample {samples[b].Id} has a {batch.PromptLengths[b]}-token prompt, over GrpoOptions.MaxPromptLength = "
                    + $"{maxPromptLength}; raise the limit or shrink the image (the processor's MaxPixels)");
        using var scope = NewDisposeScope();
        using var asBase = AsBase();
        var pixels = batch.PixelValuesTensor()!.to(Device);
        var grid = batch.ImageGridThwTensor()!;
        var images = new List<PromptImage>();
        long row = 0;
        for (long i = 0; i < grid.shape[0]; i++)
        {
            var thw = grid[i];
            var patches = thw[0].item<long>() * thw[1].item<long>() * thw[2].item<long>();
            var g = grid.narrow(0, i, 1).clone();
            var p = pixels.narrow(0, row, patches).clone();
            images.Add(new PromptImage(p, g, Model.EncodeImages(p, g)));
            row += patches;
        }
        var patch = Processor.ImageProcessor.PatchSize;
        var frames = samples.Select((s, b) => new ImageFrames(new ImageSize(s.Width, s.Height),
            new ImageSize(batch.Images!.GridThw[b].W * patch, batch.Images.GridThw[b].H * patch))).ToArray();
        var prompts = new PromptTensors(Model, batch.InputIdsTensor().to(Device), batch.AttentionMaskTensor().to(Device), images, frames);
        prompts.MoveToOuterDisposeScope();
        return prompts;
    }

    /// <summary>G completions per prompt, sampled with the KV cache from the prompts' image embeddings (detached).</summary>
    internal GenerationOutput Sample(PromptTensors prompts, SamplingOptions sampling, int g, Generator sampler)
    {
        using var asBase = AsBase();
        return Model.Generate(prompts.Ids, prompts.Mask, prompts.Detached(), sampling, g, sampler, returnLogProbs: true);
    }

    /// <summary>This policy's log-probs of G completions per prompt [B·G, C] (<see cref="PromptTensors.CompletionLogProbs"/>);
    /// the base view of a model whose adapters reach the vision tower encodes the images again, with them off.</summary>
    internal Tensor CompletionLogProbs(PromptTensors prompts, Tensor completionIds, Tensor completionMask, double temperature)
    {
        using var asBase = AsBase();
        return prompts.CompletionLogProbs(Model, completionIds, completionMask, temperature,
            encodeAgain: _baseView && Model.Adapters?.TouchesVision == true);
    }

    /// <summary>The batch's image grids as the vision tower needs them, a bad one named by its image (the tower's own
    /// check names a row of a tensor only, and comes after the pixels were copied).</summary>
    void CheckGrids(ImageFeatures images, ProcessorBatch batch)
    {
        var v = Model.Config.Vision;
        if (images.PatchDim != v.PatchDim)
            throw new ArgumentException($"the batch's pixel rows hold {images.PatchDim} values but the model's patches have {v.PatchDim} " +
                                        $"(3 x temporal_patch_size {v.TemporalPatchSize} x patch_size {v.PatchSize}^2): it was made by another processor", nameof(batch));
        int merge = v.SpatialMergeSize;
        for (int i = 0; i < images.GridThw.Count; i++)
        {
            var (t, h, w) = images.GridThw[i];
            if (t < 1 || h < merge || w < merge || h % merge != 0 || w % merge != 0)
                throw new ArgumentException($"image {i} of the batch of {batch.BatchSize} prompts has grid " +
                                            $"[t {t}, h {h}, w {w}]: h and w must be positive multiples of the model's spatial_merge_size {merge}", nameof(batch));
        }
    }

    /// <summary>Token ids of a target completion followed by <c>&lt;|im_end|&gt;</c>, as the chat template closes a turn.</summary>
    public int[] EncodeCompletion(string completion) =>
        [.. Processor.Tokenizer.Encode(completion), (int)StopTokenIds[0]];

    /// <summary>Texts of completion rows (special tokens skipped, as the official trainer decodes them, spec §2.1).</summary>
    public string[] Decode(Tensor completionIds, Tensor completionMask)
    {
        using var ids = completionIds.cpu();
        using var mask = completionMask.cpu().to_type(ScalarType.Int64);
        var (n, c) = ((int)ids.shape[0], (int)ids.shape[1]);
        var idData = ids.data<long>().ToArray();
        var maskData = mask.data<long>().ToArray();
        var texts = new string[n];
        for (int i = 0; i < n; i++)
        {
            var row = new List<int>(c);
            for (int j = 0; j < c; j++)
                if (maskData[i * c + j] != 0) row.Add((int)idData[i * c + j]);
            texts[i] = Processor.Tokenizer.Decode(row, skipSpecialTokens: true);
        }
        return texts;
    }

    /// <summary>A frozen copy (no gradients): the reference model of the KL term.</summary>
    public VisionLanguagePolicy FrozenCopy()
    {
        var copy = new Qwen2VLForConditionalGeneration(Model.Config, Device, Model.DType);
        using (torch.no_grad())
        {
            var source = Model.state_dict();
            foreach (var (name, p) in copy.named_parameters()) p.copy_(source[name]);
            foreach (var (name, b) in copy.named_buffers()) if (source.TryGetValue(name, out var s)) b.copy_(s);
        }
        foreach (var p in copy.parameters()) p.requires_grad = false;
        copy.eval();
        return new VisionLanguagePolicy(copy, Processor);
    }

    /// <summary>Writes a Hugging Face folder: config.json, model.safetensors, tokenizer.json, preprocessor_config.json.</summary>
    public void SavePretrained(string folder)
    {
        Directory.CreateDirectory(folder);
        Model.SavePretrained(folder);
        Processor.Tokenizer.Save(Path.Combine(folder, "tokenizer.json"));
        Processor.ImageProcessor.SavePreprocessorConfig(Path.Combine(folder, "preprocessor_config.json"));
    }

    public void Dispose()
    {
        if (!_baseView) Model.Dispose();
    }
}

/// <summary>One prompt's image: pixels and grid as processed, and a policy's embeddings of it.</summary>
internal sealed record PromptImage(Tensor Pixels, Tensor GridThw, Tensor Embeds);

/// <summary>
/// Left-padded prompts [B, P] on the device and, per prompt, the image as processed with <see cref="Encoder"/>'s
/// embeddings of it and their autograd graph, which a backward pass can walk only once (<see cref="GraphSpent"/>).
/// </summary>
internal sealed class PromptTensors(Qwen2VLForConditionalGeneration encoder, Tensor ids, Tensor mask, IReadOnlyList<PromptImage> images,
    IReadOnlyList<ImageFrames> frames) : IDisposable
{
    /// <summary>The model whose vision tower made the embeddings.</summary>
    public Qwen2VLForConditionalGeneration Encoder { get; } = encoder;
    public Tensor Ids { get; } = ids;
    public Tensor Mask { get; } = mask;
    public IReadOnlyList<PromptImage> Images { get; } = images;

    /// <summary>Per prompt: the image's original size and the size the processor resized it to (its patch grid).</summary>
    public IReadOnlyList<ImageFrames> Frames { get; } = frames;

    /// <summary>True once a backward pass has consumed the embeddings' graph.</summary>
    public bool GraphSpent { get; set; }

    public ImageInputs Detached() => new(cat(Images.Select(i => i.Embeds.detach()).ToList(), 0), Grid());

    Tensor Grid() => cat(Images.Select(i => i.GridThw).ToList(), 0);

    /// <summary>
    /// <paramref name="model"/>'s log-probs of G completions per prompt [B·G, C], each prompt run once
    /// (<see cref="Qwen2VLForConditionalGeneration.CompletionLogProbs(Tensor, Tensor, ImageInputs?, int, Tensor, Tensor?, double)"/>).
    /// The image embeddings are the prompts' own while their graph is unspent — with gradient the graph itself, so that the
    /// vision tower runs once per prompt and step; without, detached (the weights have not moved since) — and afterwards
    /// encoded again prompt by prompt with the weights as they are now. Another model (the frozen reference) encodes the
    /// pixels with its own tower, and so does the same model when <paramref name="encodeAgain"/> (its adapters are off now).
    /// </summary>
    public Tensor CompletionLogProbs(Qwen2VLForConditionalGeneration model, Tensor completionIds, Tensor completionMask, double temperature,
        bool encodeAgain = false)
    {
        using var scope = NewDisposeScope();
        ImageInputs images;
        if (model != Encoder || encodeAgain)
            images = new ImageInputs(model.EncodeImages(cat(Images.Select(i => i.Pixels).ToList(), 0), Grid()), Grid());
        else if ((!is_grad_enabled() && !GraphSpent) || (!model.visual.parameters().Any(p => p.requires_grad) && model.Adapters?.TouchesVision != true))
            images = Detached();   // a frozen tower's embeddings are what encoding again would give
        else
        {
            var reuse = !GraphSpent && Images.All(i => i.Embeds.requires_grad);
            GraphSpent = true;
            images = new ImageInputs(cat(Images.Select(i => reuse ? i.Embeds : model.EncodeImages(i.Pixels, i.GridThw)).ToList(), 0), Grid());
        }
        var g = (int)(completionIds.shape[0] / Ids.shape[0]);
        return model.CompletionLogProbs(Ids, Mask, images, g, completionIds, completionMask, temperature).MoveToOuterDisposeScope();
    }

    IEnumerable<Tensor> All => [Ids, Mask, .. Images.SelectMany(i => new[] { i.Pixels, i.GridThw, i.Embeds })];

    public void MoveToOuterDisposeScope()
    {
        foreach (var t in All) t.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in All) t.Dispose();
    }
}
