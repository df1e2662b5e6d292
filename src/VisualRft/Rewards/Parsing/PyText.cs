using System.Text;

namespace VisualRft.Rewards.Parsing;

/// <summary>
/// Python <c>str</c> semantics that the official reward code relies on and .NET does differently: the whitespace set
/// of <c>str.strip()</c> and <c>\s</c> (it includes U+001C–U+001F, which <see cref="char.IsWhiteSpace(char)"/> does not),
/// and <c>str.lower()</c> (U+0130 and the final-sigma rule). All other string operations used are ordinal.
/// </summary>
static class PyText
{
    /// <summary><c>str.isspace()</c> for one UTF-16 unit: .NET's whitespace plus the four information separators.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>Python's <c>\s</c> for str patterns, written as a .NET character class.</summary>
    public const string Space = @"[\s\x1c-\x1f]";

    /// <summary><c>str.strip()</c> with no argument.</summary>
    public static string Strip(string s)
    {
        int a = 0, b = s.Length;
        while (a < b && IsSpace(s[a])) a++;
        while (b > a && IsSpace(s[b - 1])) b--;
        return s.Substring(a, b - a);
    }

    /// <summary>
    /// <c>str.lower()</c>: invariant lower-casing plus the two context rules .NET lacks — U+0130 becomes "i\u0307", and a
    /// capital sigma at the end of a word becomes final sigma ς (preceded by a cased letter, not followed by one;
    /// "cased" approximated as Unicode categories Lu/Ll/Lt, "case-ignorable" as Mn/Me/Cf/Lm/Sk and . : ' ’ ·).
    /// </summary>
    public static string Lower(string s)
    {
        if (!s.Contains('\u0130') && !s.Contains('\u03a3')) return s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length + 4);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '\u0130') sb.Append("i\u0307");
            else if (c == '\u03a3') sb.Append(FinalSigma(s, i) ? '\u03c2' : '\u03c3');
            else if (char.IsSurrogate(c)) sb.Append(c);
            else sb.Append(char.ToLowerInvariant(c));
        }
        // Surrogate pairs (e.g. Deseret capitals) are lowered by the string-level invariant mapping.
        return sb.ToString().ToLowerInvariant();
    }

    static bool FinalSigma(string s, int i)
    {
        int j = i - 1;
        while (j >= 0 && CaseIgnorable(s[j])) j--;
        if (j < 0 || !Cased(s[j])) return false;
        j = i + 1;
        while (j < s.Length && CaseIgnorable(s[j])) j++;
        return j >= s.Length || !Cased(s[j]);
    }

    static bool Cased(char c) => char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.UppercaseLetter
        or System.Globalization.UnicodeCategory.LowercaseLetter or System.Globalization.UnicodeCategory.TitlecaseLetter;

    static bool CaseIgnorable(char c) => c is '.' or ':' or '\'' or '\u2019' or '\u00b7' || char.GetUnicodeCategory(c) is
        System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.EnclosingMark
        or System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.ModifierLetter
        or System.Globalization.UnicodeCategory.ModifierSymbol;
}
