using VisualRft.Text;

namespace VisualRft.GpuBench;

/// <summary>
/// A byte-level tokenizer with Qwen2-VL's id layout: 151,643 regular tokens, the special tokens at Qwen's ids
/// (&lt;|endoftext|&gt; 151643 … &lt;|video_pad|&gt; 151656) and every id up to the model's vocabulary (151,936) decodable.
/// The random 2B-shaped model needs a processor whose ids match its config, and Qwen2-VL's own tokenizer files cannot be
/// fetched here nor on the GPU machine (no network). Without merges every byte is one token, so the chat template alone
/// takes 59 tokens; the step's shape (prompt length, G, new tokens) is what the bench measures, not the text.
/// </summary>
static class QwenIdTokenizer
{
    public const int Regular = 151_643, ModelVocab = 151_936;

    static readonly Dictionary<string, int> SpecialIds = new()
    {
        [Qwen2Tokenizer.EndOfText] = 151_643, [Qwen2Tokenizer.ImStart] = 151_644, [Qwen2Tokenizer.ImEnd] = 151_645,
        [Qwen2Tokenizer.VisionStart] = 151_652, [Qwen2Tokenizer.VisionEnd] = 151_653,
        [Qwen2Tokenizer.ImagePad] = 151_655, [Qwen2Tokenizer.VideoPad] = 151_656,
    };

    public static Qwen2Tokenizer Create()
    {
        // ids 0-255 the byte symbols, then pairs and triples of them: distinct strings that decode to bytes, as a trained
        // vocabulary's tokens do (a randomly initialised model samples any of them)
        var alphabet = ByteLevel.Alphabet;
        var vocab = new Dictionary<string, int>(Regular, StringComparer.Ordinal);
        foreach (var c in alphabet) vocab[c.ToString()] = vocab.Count;
        for (int i = 0; vocab.Count < Regular; i++)
        {
            var s = i < 65_536 ? $"{alphabet[i >> 8]}{alphabet[i & 255]}"
                : $"{alphabet[(i - 65_536) >> 16 & 255]}{alphabet[(i - 65_536) >> 8 & 255]}{alphabet[(i - 65_536) & 255]}";
            vocab[s] = vocab.Count;
        }
        var byId = SpecialIds.ToDictionary(kv => kv.Value, kv => kv.Key);
        // Qwen's other reserved ids (object_ref, box, quad, vision_pad) and the unused tail of the embedding matrix are
        // special tokens here, so that any sampled id decodes (skipped in completion texts, as HF skips special tokens)
        var added = Enumerable.Range(Regular, ModelVocab - Regular)
            .Select(id => new AddedToken(byId.TryGetValue(id, out var name) ? name : $"<|reserved_{id}|>", id)).ToList();
        return new Qwen2Tokenizer(vocab, [], added, source: "the bench's Qwen-id tokenizer");
    }
}
