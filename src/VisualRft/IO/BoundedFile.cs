using System.Text;

namespace VisualRft.IO;

/// <summary>Reading of small text files (configs, manifests, indexes) with a size limit, so that a huge or endless file
/// is refused with a message instead of being read into memory.</summary>
public static class BoundedFile
{
    /// <summary>The text of <paramref name="path"/> (UTF-8, a byte order mark honoured), which must be a file of at most
    /// <paramref name="maxBytes"/> bytes; <paramref name="what"/> names it in errors ("config file").</summary>
    public static string ReadAllText(string path, int maxBytes, string what)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"{path}: is a directory, not a {what}");
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} not found: {path}", path);
        using var fs = File.OpenRead(path);
        var bytes = new byte[(int)Math.Min(maxBytes + 1L, Math.Max(fs.CanSeek ? fs.Length : 0, 4096) + 1)];
        int n = 0;
        for (int read; n < bytes.Length && (read = fs.Read(bytes, n, bytes.Length - n)) > 0;)
        {
            n += read;
            if (n == bytes.Length && n <= maxBytes) Array.Resize(ref bytes, (int)Math.Min(maxBytes + 1L, 2L * bytes.Length));
        }
        if (n > maxBytes) throw new InvalidDataException($"{path}: more than {maxBytes:N0} bytes, too large for a {what}");
        using var reader = new StreamReader(new MemoryStream(bytes, 0, n), Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
