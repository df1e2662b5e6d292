using System.Collections.Concurrent;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using VisualRft.IO;

namespace VisualRft.Text;

/// <summary>Qwen2's byte-level BPE (qwen2vl-spec §6.1): added tokens split out verbatim, NFC, the Qwen2 pre-tokenizer,
/// GPT-2 byte-to-unicode, merges applied by rank; no BOS/EOS. Decoding maps characters back to bytes and decodes UTF-8
/// with replacement. Own code rather than Microsoft.ML.Tokenizers: the pre-tokenizer must see Unicode scalars (see
/// <see cref="Qwen2PreTokenizer"/>) and the whole model is ~200 lines.</summary>
public sealed class Qwen2Tokenizer
{
    public const string EndOfText = "<|endoftext|>", ImStart = "<|im_start|>", ImEnd = "<|im_end|>",
        VisionStart = "<|vision_start|>", VisionEnd = "<|vision_end|>", ImagePad = "<|image_pad|>", VideoPad = "<|video_pad|>";

    /// <summary>The special tokens of Qwen2-VL that the project relies on, in their Qwen id order.</summary>
    public static readonly IReadOnlyList<string> QwenSpecialTokens = new[] { EndOfText, ImStart, ImEnd, VisionStart, VisionEnd, ImagePad, VideoPad };

    readonly Dictionary<string, int> vocab;
    readonly string[] idToToken;
    readonly Dictionary<(int, int), (int Rank, int Id)> merges;
    readonly (string A, string B)[] mergeList;
    readonly Dictionary<string, AddedToken> added;
    readonly Dictionary<int, AddedToken> addedById;
    readonly Dictionary<char, string[]> addedByFirstChar;
    readonly bool ignoreMerges;
    readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);

    /// <summary>Largest token id accepted (2^24; Qwen's largest is 151,656).</summary>
    public const int MaxTokenId = 1 << 24;
    /// <summary>Tokenizer files are a few MB (Qwen2's tokenizer.json: 7 MB); a larger one is refused before it is read.</summary>
    public const int MaxFileBytes = 64 << 20;

    /// <summary>Id of the padding token (tokenizer_config <c>pad_token</c>, else <c>&lt;|endoftext|&gt;</c>), if any.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Regular vocabulary (token → id), merges in rank order and added tokens.</summary>
    public Qwen2Tokenizer(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string A, string B)> merges,
                          IReadOnlyList<AddedToken> addedTokens, bool ignoreMerges = false, string source = "tokenizer")
    {
        this.vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        this.ignoreMerges = ignoreMerges;
        added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in addedTokens)
        {
            if (t.Content.Length == 0) throw new InvalidDataException($"{source}: empty added token (id {t.Id})");
            if (this.vocab.TryGetValue(t.Content, out var vid) && vid != t.Id)
                throw new InvalidDataException($"{source}: added token '{t.Content}' has id {t.Id} but the vocabulary gives it {vid}");
            added[t.Content] = t;
        }
        addedById = new Dictionary<int, AddedToken>();
        foreach (var t in addedTokens)
            if (!addedById.TryAdd(t.Id, t)) throw new InvalidDataException($"{source}: added tokens '{Excerpt.Of(addedById[t.Id].Content, 40)}' and '{Excerpt.Of(t.Content, 40)}' share id {t.Id}");
        addedByFirstChar = addedTokens.GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.Select(t => t.Content).OrderByDescending(c => c.Length).ToArray());
        // The id → token table is as long as the largest id: ids must be dense, or one id of 5·10^8 would allocate gigabytes.
        long limit = Math.Min(MaxTokenId, 2L * (vocab.Count + addedTokens.Count) + 65_536);
        foreach (var (tok, id) in this.vocab.Select(kv => (kv.Key, kv.Value)).Concat(addedTokens.Select(t => (t.Content, t.Id))))
            if (id < 0 || id > limit)
                throw new InvalidDataException($"{source}: token '{Excerpt.Of(tok, 40)}' has id {id:N0}; ids must be between 0 and {limit:N0} "
                    + $"for {vocab.Count + addedTokens.Count:N0} tokens (ids are dense)");
        int size = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, addedTokens.Count == 0 ? 0 : addedTokens.Max(t => t.Id) + 1);
        idToToken = new string[size];
        foreach (var (tok, id) in this.vocab)
        {
            if (idToToken[id] != null) throw new InvalidDataException($"{source}: id {id} is used by both '{idToToken[id]}' and '{tok}'");
            idToToken[id] = tok;
        }
        foreach (var t in addedTokens) idToToken[t.Id] ??= t.Content;
        foreach (var c in ByteLevel.Alphabet)
            if (!this.vocab.ContainsKey(c.ToString()))
                throw new InvalidDataException($"{source}: byte-level vocabulary lacks the byte symbol '{c}' (U+{(int)c:X4})");
        this.merges = new Dictionary<(int, int), (int, int)>(merges.Count);
        mergeList = merges.ToArray();
        for (int r = 0; r < merges.Count; r++)
        {
            var (a, b) = merges[r];
            if (!this.vocab.TryGetValue(a, out var ia) || !this.vocab.TryGetValue(b, out var ib) || !this.vocab.TryGetValue(a + b, out var iab))
                throw new InvalidDataException($"{source}: merge {r} '{Excerpt.Of(a + " " + b, 60)}' uses a token that is not in the vocabulary");
            this.merges.TryAdd((ia, ib), (r, iab));                         // first (highest-priority) rank wins, as in HF
        }
        PadTokenId = TokenToId(EndOfText);
    }

    /// <summary>Size of the id space (regular and added tokens).</summary>
    public int VocabSize => idToToken.Length;
    public int? TokenToId(string token) => added.TryGetValue(token, out var t) ? t.Id : vocab.TryGetValue(token, out var id) ? id : null;
    public string IdToToken(int id) => id >= 0 && id < idToToken.Length && idToToken[id] != null
        ? idToToken[id] : throw new ArgumentOutOfRangeException(nameof(id), $"token id {id} is not in the vocabulary (size {idToToken.Length})");
    /// <summary>The id of a token that must exist (special tokens of the chat template), with a clear error otherwise.</summary>
    public int RequireId(string token) => TokenToId(token) ?? throw new KeyNotFoundException($"the tokenizer has no token '{token}'");

    // ---------------------------------------------------------------- encode

    public int[] Encode(string text) => EncodeWithTokens(text).Select(t => t.Id).ToArray();

    /// <summary>Ids with their token strings, as HF's <c>encode(text).tokens</c>.</summary>
    public List<(int Id, string Token)> EncodeWithTokens(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            throw new ArgumentException($"text has an unpaired UTF-16 surrogate at index {i}", nameof(text));
        }
        var output = new List<(int, string)>();
        int segStart = 0;
        for (int i = 0; i < text.Length;)
        {
            var hit = AddedAt(text, i);
            if (hit == null) { i++; continue; }
            EncodeOrdinary(text[segStart..i], output);
            var t = added[hit];
            output.Add((t.Id, t.Content));
            i += hit.Length;
            segStart = i;
        }
        EncodeOrdinary(text[segStart..], output);
        return output;
    }

    // Leftmost-longest match of an added token at position i (HF splits them with a leftmost-longest automaton).
    string? AddedAt(string text, int i)
    {
        if (!addedByFirstChar.TryGetValue(text[i], out var candidates)) return null;
        foreach (var c in candidates)
            if (string.CompareOrdinal(text, i, c, 0, c.Length) == 0) return c;
        return null;
    }

    void EncodeOrdinary(string segment, List<(int, string)> output)
    {
        if (segment.Length == 0) return;
        var norm = segment.Normalize(NormalizationForm.FormC);
        foreach (var (start, len) in Qwen2PreTokenizer.Split(norm))
        {
            var word = ByteLevel.Encode(norm.Substring(start, len));
            foreach (var id in cache.GetOrAdd(word, Bpe)) output.Add((id, idToToken[id]));
        }
        if (cache.Count > 200_000) cache.Clear();
    }

    // Merge the adjacent pair of lowest rank (leftmost on ties) until none applies: HF's BPE word merge.
    int[] Bpe(string word)
    {
        if (ignoreMerges && vocab.TryGetValue(word, out var whole)) return new[] { whole };
        var sym = new List<int>(word.Length);
        foreach (var c in word) sym.Add(vocab[c.ToString()]);
        while (sym.Count > 1)
        {
            int best = -1, bestRank = int.MaxValue, bestId = 0;
            for (int k = 0; k + 1 < sym.Count; k++)
                if (merges.TryGetValue((sym[k], sym[k + 1]), out var m) && m.Rank < bestRank) (best, bestRank, bestId) = (k, m.Rank, m.Id);
            if (best < 0) break;
            sym[best] = bestId;
            sym.RemoveAt(best + 1);
        }
        return sym.ToArray();
    }

    // ---------------------------------------------------------------- decode

    /// <summary>Text of <paramref name="ids"/>; special added tokens are left out when <paramref name="skipSpecialTokens"/>.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && addedById.TryGetValue(id, out var t) && t.Special) continue;
            ByteLevel.AppendBytes(IdToToken(id), bytes);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    // ---------------------------------------------------------------- files

    /// <summary>Loads a Hugging Face folder: <c>tokenizer.json</c> if present, else <c>vocab.json</c> + <c>merges.txt</c> with
    /// the added tokens of <c>tokenizer_config.json</c>; the pad token comes from <c>tokenizer_config.json</c> when given.</summary>
    public static Qwen2Tokenizer FromFolder(string folder)
    {
        var cfgPath = Path.Combine(folder, "tokenizer_config.json");
        var cfg = File.Exists(cfgPath) ? ReadJson(cfgPath) : null;
        var json = Path.Combine(folder, "tokenizer.json");
        Qwen2Tokenizer tok;
        if (File.Exists(json)) tok = FromTokenizerJson(json);
        else
        {
            var vocabPath = Path.Combine(folder, "vocab.json");
            var mergesPath = Path.Combine(folder, "merges.txt");
            if (!File.Exists(vocabPath) || !File.Exists(mergesPath))
                throw new FileNotFoundException($"{folder} has neither tokenizer.json nor vocab.json + merges.txt");
            var addedTokens = new List<AddedToken>();
            if (cfg?.ObjOrNull("added_tokens_decoder") is { } dec)
                foreach (var id in dec.Keys)
                {
                    var t = dec.Obj(id);
                    addedTokens.Add(new AddedToken(t.Str("content"),
                        int.TryParse(id, System.Globalization.NumberStyles.None, null, out var n) ? n : throw dec.Error(id, "is not a token id"),
                        t.Bool("special", true)));
                }
            tok = FromVocabAndMerges(vocabPath, mergesPath, addedTokens);
        }
        // A string, or an AddedToken object ({"content": …}) as some transformers versions save it.
        var pad = cfg?.Kind("pad_token") switch
        {
            null or JsonValueKind.Undefined or JsonValueKind.Null => null,
            JsonValueKind.String => cfg.Str("pad_token"),
            JsonValueKind.Object => cfg.Obj("pad_token").Str("content"),
            _ => throw cfg.Wrong("pad_token", "a string or an object"),
        };
        if (pad == null) return tok;
        return tok.WithPad(tok.TokenToId(pad) ?? throw new InvalidDataException($"{cfgPath}: pad_token '{Excerpt.Of(pad, 40)}' is not in the vocabulary"));
    }

    Qwen2Tokenizer WithPad(int padId) =>
        new(vocab, mergeList, added.Values.ToList(), ignoreMerges) { PadTokenId = padId };

    /// <summary><c>vocab.json</c> + <c>merges.txt</c> (first line <c>#version</c> skipped) and the added tokens, which the
    /// released Qwen checkpoints keep outside vocab.json (ids 151643+).</summary>
    public static Qwen2Tokenizer FromVocabAndMerges(string vocabPath, string mergesPath, IReadOnlyList<AddedToken> addedTokens)
    {
        var vocab = ParseVocab(ReadJson(vocabPath));
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version"))) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{mergesPath}:{lineNo}: expected two tokens separated by one space, got '{Excerpt.Of(line, 60)}'");
            merges.Add((parts[0], parts[1]));
        }
        return new Qwen2Tokenizer(vocab, merges, addedTokens, source: vocabPath);
    }

    /// <summary>A Hugging Face <c>tokenizer.json</c> with a BPE model and the Qwen2 (or no) pre-tokenizer pattern.</summary>
    public static Qwen2Tokenizer FromTokenizerJson(string path)
    {
        var root = ReadJson(path);
        var model = root.Obj("model");
        var type = model.Str("type", null);
        if (type is not (null or "BPE")) throw new NotSupportedException($"{path}: model type '{Excerpt.Of(type, 40)}' is not BPE");
        if (model.Bool("byte_fallback", false) || model.Has("continuing_subword_prefix") || model.Has("end_of_word_suffix"))
            throw new NotSupportedException($"{path}: byte_fallback / continuing_subword_prefix / end_of_word_suffix are not used by Qwen2 and not supported");
        foreach (var node in root.ObjOrNull("pre_tokenizer")?.SelfAndDescendants() ?? [])
        {
            if (node.ObjOrNull("pattern") is { } pat && pat.Str("Regex", null) != Qwen2PreTokenizer.Pattern)
                throw new NotSupportedException($"{path}: pre-tokenizer pattern {Excerpt.Of(pat.ToString(), 80)} is not Qwen2's");
            if (node.Str("type", null) == "ByteLevel" && node.Bool("use_regex", false))
                throw new NotSupportedException($"{path}: a ByteLevel pre-tokenizer with use_regex (GPT-2 splitting) is not Qwen2's");
        }
        var norm = root.ObjOrNull("normalizer")?.Str("type", null);
        if (norm is not (null or "NFC")) throw new NotSupportedException($"{path}: normalizer '{Excerpt.Of(norm, 40)}' is not NFC");
        var vocab = ParseVocab(model.Obj("vocab"));
        var merges = new List<(string, string)>();
        var entries = model.Entries("merges");
        for (int i = 0; i < entries.Count; i++)
        {
            // Two forms: ["a", "b"] (newer tokenizers releases) and "a b" (older files).
            var m = entries[i];
            if (m is JsonArray { Count: 2 } pair && pair[0] is JsonValue a && a.TryGetValue(out string? left) && pair[1] is JsonValue b && b.TryGetValue(out string? right))
                merges.Add((left, right));
            else if (m is JsonValue v && v.TryGetValue(out string? text) && text.Split(' ') is { Length: 2 } parts) merges.Add((parts[0], parts[1]));
            else throw model.Error($"merges[{i}]", $"must be [\"a\", \"b\"] or \"a b\", got {Excerpt.Of(m?.ToJsonString() ?? "null", 60)}");
        }
        var addedTokens = root.Objs("added_tokens").Select(t => new AddedToken(t.Str("content"), t.Int("id"), t.Bool("special", false))).ToList();
        return new Qwen2Tokenizer(vocab, merges, addedTokens, model.Bool("ignore_merges", false), path);
    }

    /// <summary>Writes a <c>tokenizer.json</c> in the Hugging Face format (Qwen2 normaliser, pre-tokenizer and decoder).</summary>
    public void Save(string path)
    {
        var vocabObj = new JsonObject();
        foreach (var (tok, id) in vocab.OrderBy(kv => kv.Value)) vocabObj[tok] = id;
        var root = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(added.Values.OrderBy(t => t.Id).Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t.Id, ["content"] = t.Content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = t.Special,
            }).ToArray()),
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Qwen2PreTokenizer.Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocabObj,
                ["merges"] = new JsonArray(mergeList.Select(m => (JsonNode)new JsonArray(m.A, m.B)).ToArray()),
            },
        };
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.WriteAllText(path, root.ToJsonString(options));
    }

    /// <summary>Token → id of a vocabulary object (<c>model.vocab</c> of tokenizer.json, or all of vocab.json).</summary>
    static Dictionary<string, int> ParseVocab(JsonFields vocab)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var token in vocab.Keys) d[token] = vocab.Int(token);
        return d;
    }

    static JsonFields ReadJson(string path) => JsonFields.Load(path, MaxFileBytes, "tokenizer file");
}
