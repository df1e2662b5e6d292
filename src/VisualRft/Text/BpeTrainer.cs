using System.Text;

namespace VisualRft.Text;

/// <summary>Learns a small byte-level BPE vocabulary for the tiny CPU model (DESIGN "one model family, every size"):
/// ids 0–255 are the 256 byte symbols in byte order, then one token per learned merge, then the Qwen special tokens.
/// Text is split exactly as the Qwen2 tokenizer splits it, so the result loads and encodes through
/// <see cref="Qwen2Tokenizer"/>. Deterministic: pairs are chosen by count, ties broken by the ordinal order of the pair's
/// strings, independent of hashing and of corpus order.</summary>
public static class BpeTrainer
{
    /// <summary>Trains on <paramref name="corpus"/> until the vocabulary (bytes + merges + specials) reaches
    /// <paramref name="vocabSize"/> or no pair occurs at least <paramref name="minFrequency"/> times.</summary>
    public static Qwen2Tokenizer Train(IEnumerable<string> corpus, int vocabSize, IReadOnlyList<string>? specialTokens = null, int minFrequency = 2)
    {
        var specials = specialTokens ?? Qwen2Tokenizer.QwenSpecialTokens;
        int target = vocabSize - specials.Count;
        if (target < 256) throw new ArgumentOutOfRangeException(nameof(vocabSize), $"vocabulary size {vocabSize} leaves no room for the 256 byte tokens and {specials.Count} special tokens");
        if (minFrequency < 1) throw new ArgumentOutOfRangeException(nameof(minFrequency), $"minFrequency must be at least 1, got {minFrequency}");

        var tokens = ByteLevel.Alphabet.Select(c => c.ToString()).ToList();
        var vocab = tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal);

        // word counts over pre-tokenized text, with special tokens cut out as the tokenizer would
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in corpus)
            foreach (var segment in SplitOnSpecials(text, specials))
            {
                var norm = segment.Normalize(NormalizationForm.FormC);
                foreach (var (s, l) in Qwen2PreTokenizer.Split(norm))
                {
                    var w = ByteLevel.Encode(norm.Substring(s, l));
                    counts[w] = counts.GetValueOrDefault(w) + 1;
                }
            }
        var words = counts.Keys.OrderBy(w => w, StringComparer.Ordinal).Select(w => w.Select(c => vocab[c.ToString()]).ToList()).ToList();
        var freq = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).ToArray();

        var pairCount = new Dictionary<(int, int), long>();
        var where = new Dictionary<(int, int), HashSet<int>>();
        for (int w = 0; w < words.Count; w++) AddPairs(w, +1);

        var queue = new PriorityQueue<(int, int), (long, string, string)>(Comparer<(long Count, string A, string B)>.Create((x, y) =>
            x.Count != y.Count ? y.Count.CompareTo(x.Count) : string.CompareOrdinal(x.A, y.A) is var c and not 0 ? c : string.CompareOrdinal(x.B, y.B)));
        foreach (var (p, c) in pairCount) queue.Enqueue(p, (c, tokens[p.Item1], tokens[p.Item2]));

        var merges = new List<(string, string)>();
        while (tokens.Count < target && queue.TryDequeue(out var pair, out var key))
        {
            if (pairCount.GetValueOrDefault(pair) != key.Item1) continue;            // stale entry
            if (key.Item1 < minFrequency) break;
            string a = tokens[pair.Item1], b = tokens[pair.Item2], ab = a + b;
            if (!vocab.TryGetValue(ab, out var id)) { id = tokens.Count; tokens.Add(ab); vocab[ab] = id; }
            merges.Add((a, b));
            var touched = new HashSet<(int, int)>();
            foreach (var w in where[pair].OrderBy(w => w).ToArray())
            {
                AddPairs(w, -1, touched);
                var sym = words[w];
                for (int k = 0; k + 1 < sym.Count; k++)
                    if (sym[k] == pair.Item1 && sym[k + 1] == pair.Item2) { sym[k] = id; sym.RemoveAt(k + 1); }
                AddPairs(w, +1, touched);
            }
            foreach (var p in touched)
                if (pairCount.GetValueOrDefault(p) > 0) queue.Enqueue(p, (pairCount[p], tokens[p.Item1], tokens[p.Item2]));
        }

        var added = specials.Select((s, i) => new AddedToken(s, tokens.Count + i)).ToList();
        return new Qwen2Tokenizer(vocab, merges, added, source: "BpeTrainer");

        void AddPairs(int w, int sign, HashSet<(int, int)>? touched = null)
        {
            var sym = words[w];
            for (int k = 0; k + 1 < sym.Count; k++)
            {
                var p = (sym[k], sym[k + 1]);
                pairCount[p] = pairCount.GetValueOrDefault(p) + sign * freq[w];
                if (!where.TryGetValue(p, out var set)) where[p] = set = new HashSet<int>();
                if (sign > 0) set.Add(w);
                touched?.Add(p);
            }
        }
    }

    static IEnumerable<string> SplitOnSpecials(string text, IReadOnlyList<string> specials)
    {
        int start = 0;
        for (int i = 0; i < text.Length; i++)
            foreach (var s in specials)
                if (string.CompareOrdinal(text, i, s, 0, s.Length) == 0)
                {
                    yield return text[start..i];
                    start = i + s.Length;
                    i = start - 1;
                    break;
                }
        yield return text[start..];
    }
}
