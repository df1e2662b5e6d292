using System.Text;

namespace VisualRft.IO;

/// <summary>Reading of input files with a size limit, so that a huge or endless file is refused with a message that
/// names it instead of being read into memory.</summary>
public static class BoundedFile
{
    /// <summary>
    /// <paramref name="path"/> opened for reading, which must be a regular file: a directory, a missing path and a device
    /// or pipe (<c>/dev/zero</c>, which never ends) are refused at once, with <paramref name="what"/> ("config file") in
    /// the message.
    /// </summary>
    /// <remarks>.NET does not expose the file type on Unix; a device reports length 0 and still yields bytes, which is
    /// what is tested (a regular empty file yields none).</remarks>
    public static FileStream OpenRegular(string path, string what)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"{path}: is a directory, where the {what} should be");
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} not found: {path}", path);
        var fs = File.OpenRead(path);
        try
        {
            if (!fs.CanSeek || fs.Length == 0 && fs.ReadByte() >= 0)
                throw new InvalidDataException($"{path}: not a regular file (a device or a pipe), where the {what} should be");
            fs.Position = 0;
            return fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>The bytes of <paramref name="path"/>, which must be a regular file of at most <paramref name="maxBytes"/>
    /// bytes (checked before anything is read).</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        using var fs = OpenRegular(path, what);
        if (fs.Length > maxBytes) throw new InvalidDataException($"{path}: more than {maxBytes:N0} bytes ({fs.Length:N0}), too large for the {what}");
        var bytes = new byte[fs.Length];
        fs.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The text of <paramref name="path"/> (UTF-8, a byte order mark honoured), which must be a regular file of
    /// at most <paramref name="maxBytes"/> bytes; <paramref name="what"/> names it in errors ("config file").</summary>
    public static string ReadAllText(string path, int maxBytes, string what)
    {
        using var reader = new StreamReader(new MemoryStream(ReadAllBytes(path, maxBytes, what)), Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
