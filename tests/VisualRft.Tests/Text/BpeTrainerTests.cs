using System.Text;
using CsCheck;
using VisualRft.Text;

namespace VisualRft.Tests.Text;

public class BpeTrainerTests
{
    internal static readonly string[] Corpus = Enumerable.Range(0, 60).SelectMany(i => new[]
    {
        $"<think>The image shows a dog number {i}. I check its shape.</think><answer>[{i}, {i * 7 % 300}, {i * 3 % 500}, {i * 11 % 640}]</answer>",
        "Detect all objects belonging to the category 'dog' in the image, and provide the bounding boxes.",
        "这是一张图片。 Output the thinking process in <think> </think> and the final answer in <answer> </answer> tags.",
    }).ToArray();

    internal static Qwen2Tokenizer Tiny(int vocabSize = 320) => BpeTrainer.Train(Corpus, vocabSize);

    [Fact]
    public void Layout_is_bytes_then_merges_then_qwen_specials()
    {
        var tok = Tiny();
        Assert.Equal(320, tok.VocabSize);
        for (int b = 0; b < 256; b++) Assert.Equal(ByteLevel.Char((byte)b).ToString(), tok.IdToToken(b));
        Assert.Equal(Qwen2Tokenizer.QwenSpecialTokens, Enumerable.Range(313, 7).Select(tok.IdToToken));
        Assert.Equal(313, tok.PadTokenId);
        Assert.InRange(tok.Encode(Corpus[1]).Length, 1, Corpus[1].Length * 6 / 10);
        Assert.Equal(new[] { 314 }, tok.Encode("<|im_start|>"));
        // with room to spare, training saturates: every word of the corpus becomes a single token
        var full = BpeTrainer.Train(Corpus, 1000);
        Assert.InRange(full.VocabSize, 300, 999);
        Assert.Equal(Qwen2PreTokenizer.Split(Corpus[1]).Count, full.Encode(Corpus[1]).Length);
    }

    [Fact]
    public void Training_is_deterministic_and_independent_of_corpus_order()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vrft-bpe-{Guid.NewGuid():N}");
        var a = Path.Combine(dir, "a", "tokenizer.json");
        var b = Path.Combine(dir, "b", "tokenizer.json");
        Tiny().Save(a);
        BpeTrainer.Train(Corpus.Reverse(), 320).Save(b);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        var loaded = Qwen2Tokenizer.FromTokenizerJson(a);
        var text = Corpus[0] + Corpus[2];
        Assert.Equal(Tiny().Encode(text), loaded.Encode(text));
    }

    [Fact]
    public void Stops_when_no_pair_is_frequent_enough_and_rejects_tiny_sizes()
    {
        var tok = BpeTrainer.Train(new[] { "ab" }, 1000);
        Assert.Equal(256 + 7, tok.VocabSize);
        Assert.Equal(257 + 7, BpeTrainer.Train(new[] { "ab" }, 1000, minFrequency: 1).VocabSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => BpeTrainer.Train(Corpus, 200));
    }

    static readonly Gen<string> Segment = Gen.Frequency(
            (4, Gen.Char["abcdefg ABC\n\t\r'0123456789.,!?-"].Select(c => c.ToString())),
            (1, Gen.Int[0x80, 0x10FFFF].Where(c => c is < 0xD800 or > 0xDFFF).Select(char.ConvertFromUtf32)),
            (1, Gen.Char["\u0301\u0308\u00e9\u4e2d\u00a0\u3000"].Select(c => c.ToString())))
        .Array[0, 12].Select(string.Concat);

    [Fact]
    public void Encode_then_decode_gives_the_nfc_text_back_including_special_tokens()
    {
        var tok = Tiny();
        var specials = Gen.Int[0, Qwen2Tokenizer.QwenSpecialTokens.Count - 1].Select(i => Qwen2Tokenizer.QwenSpecialTokens[i]);
        Gen.Select(Segment.Array[1, 4], specials.Array[3]).Sample((texts, sp) =>
        {
            var input = new StringBuilder();
            var expected = new StringBuilder();
            for (int i = 0; i < texts.Length; i++)
            {
                input.Append(texts[i]);
                expected.Append(texts[i].Normalize(NormalizationForm.FormC));
                if (i < texts.Length - 1) { input.Append(sp[i]); expected.Append(sp[i]); }
            }
            var ids = tok.Encode(input.ToString());
            return tok.Decode(ids) == expected.ToString()
                && tok.Decode(ids, skipSpecialTokens: true) == string.Concat(texts.Select(t => t.Normalize(NormalizationForm.FormC)));
        }, iter: 300);
    }
}
