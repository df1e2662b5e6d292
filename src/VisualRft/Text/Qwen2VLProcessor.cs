using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using VisualRft.Imaging;
using static TorchSharp.torch;

namespace VisualRft.Text;

/// <summary>Model inputs of a batch of prompts: <c>input_ids</c> and <c>attention_mask</c> [B, L], left padded (pad
/// positions have mask 0 and the tokenizer's pad id), and the images of all prompts in order.</summary>
public sealed class ProcessorBatch
{
    public int BatchSize { get; }
    public int SequenceLength { get; }
    /// <summary>Row-major [B, L].</summary>
    public long[] InputIds { get; }
    /// <summary>Row-major [B, L]: 1 on tokens, 0 on left padding.</summary>
    public long[] AttentionMask { get; }
    /// <summary>Unpadded prompt lengths.</summary>
    public int[] PromptLengths { get; }
    /// <summary>The rendered prompt texts before <c>&lt;|image_pad|&gt;</c> expansion.</summary>
    public IReadOnlyList<string> Texts { get; }
    public ImageFeatures? Images { get; }

    public ProcessorBatch(long[] inputIds, long[] attentionMask, int[] promptLengths, IReadOnlyList<string> texts, ImageFeatures? images)
    {
        BatchSize = promptLengths.Length;
        SequenceLength = BatchSize == 0 ? 0 : inputIds.Length / BatchSize;
        (InputIds, AttentionMask, PromptLengths, Texts, Images) = (inputIds, attentionMask, promptLengths, texts, images);
    }

    /// <summary>The unpadded ids of prompt <paramref name="b"/>.</summary>
    public ReadOnlySpan<long> Row(int b) => InputIds.AsSpan(b * SequenceLength + SequenceLength - PromptLengths[b], PromptLengths[b]);

    public Tensor InputIdsTensor() => torch.tensor(InputIds, new long[] { BatchSize, SequenceLength }, ScalarType.Int64);
    public Tensor AttentionMaskTensor() => torch.tensor(AttentionMask, new long[] { BatchSize, SequenceLength }, ScalarType.Int64);
    public Tensor? PixelValuesTensor() => Images?.PixelValuesTensor();
    public Tensor? ImageGridThwTensor() => Images?.GridThwTensor();
}

/// <summary>Tokenizer + image processor, as transformers' <c>Qwen2VLProcessor</c>: the chat template, images
/// preprocessed, each <c>&lt;|image_pad|&gt;</c> expanded to its grid's token count, prompts tokenized and left padded
/// for batched generation (the GRPO rollouts, visual-rft-spec §3.1).</summary>
public sealed class Qwen2VLProcessor
{
    public Qwen2Tokenizer Tokenizer { get; }
    public Qwen2VLImageProcessor ImageProcessor { get; }
    public int PadTokenId { get; }

    public Qwen2VLProcessor(Qwen2Tokenizer tokenizer, Qwen2VLImageProcessor imageProcessor)
    {
        (Tokenizer, ImageProcessor) = (tokenizer, imageProcessor);
        PadTokenId = tokenizer.PadTokenId ?? throw new ArgumentException("the tokenizer has no pad token (<|endoftext|> or tokenizer_config pad_token)");
        foreach (var s in new[] { Qwen2Tokenizer.ImStart, Qwen2Tokenizer.ImEnd, Qwen2Tokenizer.VisionStart, Qwen2Tokenizer.VisionEnd, Qwen2Tokenizer.ImagePad })
            tokenizer.RequireId(s);
    }

    /// <summary>A Hugging Face model folder: tokenizer files and <c>preprocessor_config.json</c> (defaults when absent).</summary>
    public static Qwen2VLProcessor FromFolder(string folder)
    {
        var pp = Path.Combine(folder, "preprocessor_config.json");
        return new Qwen2VLProcessor(Qwen2Tokenizer.FromFolder(folder),
                                    File.Exists(pp) ? Qwen2VLImageProcessor.FromPreprocessorConfig(pp) : new Qwen2VLImageProcessor());
    }

    /// <summary>One prompt: an image then <paramref name="text"/> in a user turn.</summary>
    public ProcessorBatch Process(RgbImage image, string text) => Process(new[] { (image, text) });
    public ProcessorBatch Process(Image<Rgb24> image, string text) => Process(RgbImage.FromImageSharp(image), text);
    /// <summary>The image file is decoded with the size limits of <see cref="ImageLoader"/>.</summary>
    public ProcessorBatch Process(string imagePath, string text) => Process(ImageLoader.Load(imagePath, ImageProcessor.MaxDecodePixels), text);

    /// <summary>A batch of (image, question) prompts, left padded.</summary>
    public ProcessorBatch Process(IReadOnlyList<(RgbImage Image, string Text)> prompts) =>
        Process(prompts.Select(p => ChatTemplate.ImageQuestion(p.Text)).ToList(), prompts.Select(p => p.Image).ToList());

    /// <summary>General form: rendered chat texts (with one <c>&lt;|image_pad|&gt;</c> per image) and the images of all
    /// texts in order; a running image index spans the batch as in the reference processor (spec §6.3).</summary>
    public ProcessorBatch Process(IReadOnlyList<string> texts, IReadOnlyList<RgbImage> images)
    {
        var features = images.Count > 0 ? ImageProcessor.Preprocess(images) : null;
        var counts = Enumerable.Range(0, images.Count).Select(i => features!.TokenCount(i, ImageProcessor.MergeSize)).ToArray();
        var sequences = new List<int[]>(texts.Count);
        int next = 0;
        foreach (var text in texts)
        {
            int n = CountOccurrences(text, Qwen2Tokenizer.ImagePad);
            if (next + n > counts.Length)
                throw new ArgumentException($"the texts hold more {Qwen2Tokenizer.ImagePad} placeholders than the {images.Count} image(s) given");
            sequences.Add(Tokenizer.Encode(ChatTemplate.ExpandImagePads(text, counts[next..(next + n)])));
            next += n;
        }
        if (next != counts.Length) throw new ArgumentException($"{images.Count} image(s) given but the texts hold {next} {Qwen2Tokenizer.ImagePad} placeholder(s)");
        var (ids, mask, _) = PadLeft(sequences, PadTokenId);
        return new ProcessorBatch(ids, mask, sequences.Select(s => s.Length).ToArray(), texts, features);
    }

    /// <summary>Left padding to the longest sequence: ids and mask row-major [B, L], and L.</summary>
    public static (long[] Ids, long[] Mask, int Length) PadLeft(IReadOnlyList<IReadOnlyList<int>> sequences, int padId)
    {
        int len = sequences.Count == 0 ? 0 : sequences.Max(s => s.Count);
        var ids = new long[sequences.Count * len];
        var mask = new long[sequences.Count * len];
        for (int b = 0; b < sequences.Count; b++)
        {
            int off = len - sequences[b].Count;
            for (int j = 0; j < len; j++)
            {
                bool real = j >= off;
                ids[b * len + j] = real ? sequences[b][j - off] : padId;
                mask[b * len + j] = real ? 1 : 0;
            }
        }
        return (ids, mask, len);
    }

    static int CountOccurrences(string text, string s)
    {
        int n = 0;
        for (int at = text.IndexOf(s, StringComparison.Ordinal); at >= 0; at = text.IndexOf(s, at + s.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
