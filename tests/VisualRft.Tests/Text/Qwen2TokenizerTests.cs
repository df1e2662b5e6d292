using System.Text.Json;
using VisualRft.Text;

namespace VisualRft.Tests.Text;

public class Qwen2TokenizerTests
{
    static string Dir => Path.Combine(Golden.Dir, "tokenizer");

    sealed record Case(string text, int[] ids, string[] tokens, string decoded);
    sealed record Encodings(string pattern, Dictionary<string, int> specials, Case[] cases);

    static Encodings Load() => JsonSerializer.Deserialize<Encodings>(File.ReadAllText(Path.Combine(Dir, "encodings.json")))!;

    public static IEnumerable<object[]> Sources() => new[] { new object[] { "tokenizer.json" }, new object[] { "vocab.json+merges.txt" } };

    static Qwen2Tokenizer Build(string source)
    {
        if (source == "tokenizer.json") return Qwen2Tokenizer.FromTokenizerJson(Path.Combine(Dir, "tokenizer.json"));
        var specials = Load().specials.Select(kv => new AddedToken(kv.Key, kv.Value)).ToList();
        return Qwen2Tokenizer.FromVocabAndMerges(Path.Combine(Dir, "vocab.json"), Path.Combine(Dir, "merges.txt"), specials);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Sources))]
    public void Every_fixture_string_gives_the_reference_ids_tokens_and_text(string source)
    {
        var golden = Load();
        Assert.Equal(Qwen2PreTokenizer.Pattern, golden.pattern);
        var tok = Build(source);
        foreach (var c in golden.cases)
        {
            var enc = tok.EncodeWithTokens(c.text);
            Assert.Equal(c.ids, enc.Select(e => e.Id).ToArray());
            Assert.Equal(c.tokens, enc.Select(e => e.Token).ToArray());
            Assert.Equal(c.decoded, tok.Decode(c.ids));
        }
    }

    [Fact]
    [Trait("Category", "Golden")]
    public void Skipping_special_tokens_drops_exactly_the_added_tokens()
    {
        var tok = Build("tokenizer.json");
        var golden = Load();
        var chat = golden.cases.Single(c => c.text.StartsWith("<|im_start|>"));
        var expected = golden.specials.Keys.Aggregate(chat.text, (s, sp) => s.Replace(sp, ""));
        Assert.Equal(expected, tok.Decode(chat.ids, skipSpecialTokens: true));
        Assert.Equal(0, tok.PadTokenId);
    }

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("it's 'Sam' I'M", new[] { "it", "'s", " '", "Sam", "'", " I", "'M" })]
    [InlineData("a1234b", new[] { "a", "1", "2", "3", "4", "b" })]
    [InlineData("x  \n\n  y", new[] { "x", "  \n\n", " ", " y" })]
    [InlineData("end   ", new[] { "end", "   " })]
    [InlineData("a \tb", new[] { "a", " ", "\tb" })]
    [InlineData("?!\r\nnext", new[] { "?!\r\n", "next" })]
    [InlineData("𝐀𝐁 math", new[] { "𝐀𝐁", " math" })]   // astral letters are \p{L}: one piece, as in the Rust reference
    [InlineData("🙂🙂 ok", new[] { "🙂🙂", " ok" })]
    public void Pre_tokenizer_splits_like_the_qwen2_pattern(string text, string[] pieces) =>
        Assert.Equal(pieces, Qwen2PreTokenizer.Split(text).Select(p => text.Substring(p.Start, p.Length)).ToArray());

    [Fact]
    public void Normalises_to_nfc_and_rejects_unpaired_surrogates()
    {
        var tok = Build("tokenizer.json");
        Assert.Equal(tok.Encode("caf\u00e9"), tok.Encode("cafe\u0301"));
        var e = Assert.Throws<ArgumentException>(() => tok.Encode("ab\ud800c"));
        Assert.Contains("index 2", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode(new[] { 100_000 }));
    }

    [Fact]
    public void Bad_files_give_errors_naming_them()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vrft-tok-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var merges = Path.Combine(dir, "merges.txt");
        File.WriteAllText(merges, "#version: 0.2\nzz qq\n");
        var e = Assert.Throws<InvalidDataException>(() =>
            Qwen2Tokenizer.FromVocabAndMerges(Path.Combine(Dir, "vocab.json"), merges, Array.Empty<AddedToken>()));
        Assert.Contains("merge 0 'zz qq'", e.Message);
        var json = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(json, File.ReadAllText(Path.Combine(Dir, "tokenizer.json")).Replace(@"\\p{N}|", @"\\p{N}{1,3}|"));
        var e2 = Assert.Throws<NotSupportedException>(() => Qwen2Tokenizer.FromTokenizerJson(json));
        Assert.Contains(json, e2.Message);
        Assert.Throws<FileNotFoundException>(() => Qwen2Tokenizer.FromFolder(dir + "-absent"));
        var original = File.ReadAllText(Path.Combine(Dir, "tokenizer.json"));
        File.WriteAllText(json, original.Replace("\"id\": 1,", "\"id\": \"1\","));
        Assert.Equal($"{json}: key 'added_tokens[1].id' must be an integer, got \"1\"",
            Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.FromTokenizerJson(json)).Message);
        File.WriteAllText(json, original.Replace("\"model\": {", "\"model\": { \"dropout\": 0.1,"));
        Assert.Equal($"{json}: key 'model.dropout' is given twice", Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.FromTokenizerJson(json)).Message);
        File.WriteAllText(json, original.Replace("\"merges\": [", "\"merges\": [\"a b c\", "));
        Assert.Equal($"{json}: key 'model.merges[0]' must be [\"a\", \"b\"] or \"a b\", got \"a b c\"",
            Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.FromTokenizerJson(json)).Message);
    }
}
