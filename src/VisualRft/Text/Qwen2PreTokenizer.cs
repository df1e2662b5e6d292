using System.Globalization;
using System.Text;

namespace VisualRft.Text;

/// <summary>The Qwen2 pre-tokenizer, <c>Split(pattern, Isolated)</c> (qwen2vl-spec §6.1 step 3), hand-coded over Unicode
/// scalar values. Hand-coded rather than a .NET <c>Regex</c> because .NET matches UTF-16 code units: a letter outside the
/// BMP (𝐀, 𠀀) is two surrogates, not <c>\p{L}</c>, and would split differently from the Rust (Oniguruma) reference.</summary>
public static class Qwen2PreTokenizer
{
    /// <summary>The pattern of Qwen2/Qwen2-VL <c>tokenizer.json</c> that <see cref="Split"/> implements.</summary>
    public const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Pieces of <paramref name="text"/> as (start, length) in UTF-16 units; they tile the text.</summary>
    public static List<(int Start, int Length)> Split(string text)
    {
        var pieces = new List<(int, int)>();
        for (int i = 0; i < text.Length;)
        {
            int end = MatchAt(text, i);
            pieces.Add((i, end - i));
            i = end;
        }
        return pieces;
    }

    // One leftmost match at i, alternatives tried in pattern order with the backtracking outcome of each
    // (greedy quantifiers), as Oniguruma would. Every character falls in one of the alternatives, so a match always exists.
    static int MatchAt(string s, int i)
    {
        int n = s.Length;
        var (r0, l0) = At(s, i);
        // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d); Unicode case folding also maps ſ (U+017F) to s
        if (r0 == '\'' && i + 1 < n)
        {
            char a = Fold(s[i + 1]);
            if (a is 's' or 't' or 'm' or 'd') return i + 2;
            if (i + 2 < n)
            {
                char b = Fold(s[i + 2]);
                if ((a, b) is ('r', 'e') or ('v', 'e') or ('l', 'l')) return i + 3;
            }
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if (IsLetter(r0)) return Letters(s, i + l0);
        if (!IsCrLf(r0) && !IsNumber(r0) && i + l0 < n && IsLetter(At(s, i + l0).Rune)) return Letters(s, i + l0);
        // 3. \p{N}
        if (IsNumber(r0)) return i + l0;
        // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
        int k = r0 == ' ' ? i + 1 : i;
        if (k < n && IsOther(At(s, k).Rune))
        {
            while (k < n && At(s, k) is var (r, l) && IsOther(r)) k += l;
            while (k < n && s[k] is '\r' or '\n') k++;
            return k;
        }
        // r0 is whitespace from here on; all whitespace characters are in the BMP.
        int j = i;
        while (j < n && IsWhitespace(s[j])) j++;
        // 5. \s*[\r\n]+ : greedy \s* backs off to the last line break of the run
        for (int m = j - 1; m >= i; m--)
            if (s[m] is '\r' or '\n') return m + 1;
        // 6. \s+(?!\S) : the whole run at the end of text, else all but its last character
        if (j == n) return j;
        if (j - i >= 2) return j - 1;
        // 7. \s+
        return j;
    }

    static int Letters(string s, int k)
    {
        while (k < s.Length && At(s, k) is var (r, l) && IsLetter(r)) k += l;
        return k;
    }

    static (int Rune, int Length) At(string s, int i)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) return (char.ConvertToUtf32(c, s[i + 1]), 2);
        return (c, 1);                                                      // lone surrogates are rejected before splitting
    }

    static char Fold(char c) => c == '\u017F' ? 's' : c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;

    static bool IsCrLf(int r) => r is '\r' or '\n';

    static bool IsLetter(int r) => Category(r) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
        or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    static bool IsNumber(int r) => Category(r) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>Oniguruma's Unicode <c>\s</c>: the White_Space property.</summary>
    static bool IsWhitespace(int r) => r is >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
        or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    static bool IsOther(int r) => !IsWhitespace(r) && !IsLetter(r) && !IsNumber(r);

    static UnicodeCategory Category(int r) => Rune.IsValid(r) ? Rune.GetUnicodeCategory(new Rune(r)) : UnicodeCategory.Surrogate;
}
