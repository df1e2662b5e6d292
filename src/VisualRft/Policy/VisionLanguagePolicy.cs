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
        var grid = images.GridThwTensor();
        return new ImageInputs(Model.EncodeImages(batch.PixelValuesTensor()!.to(Device), grid), grid);
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

    public void Dispose() => Model.Dispose();
}
