namespace VisualRft.IO;

/// <summary>
/// Quotations of untrusted text in messages. An error about a 20 MB answer must not be 20 MB long, so every message
/// that repeats input quotes it through here.
/// </summary>
public static class Excerpt
{
    public const int DefaultLength = 120;

    /// <summary><paramref name="text"/> itself when it has at most <paramref name="max"/> characters, else its start
    /// followed by "..." (never half of a surrogate pair), <paramref name="max"/> characters in all.</summary>
    public static string Of(string text, int max = DefaultLength)
    {
        if (text.Length <= max) return text;
        int n = Math.Max(0, max - 3);
        if (n > 0 && char.IsHighSurrogate(text[n - 1])) n--;
        return string.Concat(text.AsSpan(0, n), "...");
    }
}
