using System.Text;

namespace VisualRft.Text;

/// <summary>GPT-2's <c>bytes_to_unicode</c> (qwen2vl-spec §6.1 step 3): every byte gets a printable character so that
/// BPE works on strings; printable Latin-1 bytes map to themselves, the others to U+0100 + n (space → Ġ, \n → Ċ).</summary>
public static class ByteLevel
{
    static readonly char[] ByteToChar = BuildMap();
    static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    static char[] BuildMap()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    /// <summary>The character standing for byte <paramref name="b"/>.</summary>
    public static char Char(byte b) => ByteToChar[b];

    /// <summary>The 256 byte characters in byte order.</summary>
    public static IReadOnlyList<char> Alphabet => ByteToChar;

    /// <summary>UTF-8 bytes of <paramref name="text"/> as byte-level characters.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, (span, b) => { for (int i = 0; i < b.Length; i++) span[i] = ByteToChar[b[i]]; });
    }

    /// <summary>Appends the bytes of a token the way the HF ByteLevel decoder does: characters of the byte map become
    /// their bytes; a token holding any other character (an added token such as Chinese text) is taken as UTF-8.</summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        int start = output.Count;
        foreach (var c in token)
        {
            if (!CharToByte.TryGetValue(c, out var b))
            {
                output.RemoveRange(start, output.Count - start);
                output.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
            output.Add(b);
        }
    }
}
