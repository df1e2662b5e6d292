using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using TorchSharp;

namespace VisualRft.Torch;

/// <summary>
/// Makes TorchSharp's native shim <c>libLibTorchSharp.so</c> loadable on Debian 12. TorchSharp 0.107's shim was linked
/// against GCC 13 and asks for <c>GLIBCXX_3.4.32</c>, which Debian 12 (GCC 12) lacks, so the first torch call fails with
/// a misleading "doesn't contain a reference to libtorch-cpu-linux-x64" (platform-notes.md §13). The only symbol of that
/// version is an iostream initialiser with no relocation, so marking the version need as weak (VER_FLG_WEAK) lets glibc
/// load the library unchanged otherwise. The patch is idempotent and touches the copies next to TorchSharp.dll, in the
/// app folder and in the NuGet package folder.
/// </summary>
static class NativeShim
{
    internal const string MissingVersion = "GLIBCXX_3.4.32";

    /// <summary>
    /// Runs when this assembly is first used, so that the shim is patched even if the caller's next line touches a torch
    /// static (e.g. <c>torch.CPU</c>) before any VisualRft call has loaded libtorch. File work only; never throws.
    /// </summary>
#pragma warning disable CA2255 // a library module initializer on purpose: it must run before the caller's first torch call
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void PatchOnAssemblyLoad()
    {
        try { PatchAll(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    // Set once every candidate was read; loading then skips re-reading the shims that the module initializer patched.
    static volatile bool _patched;

    internal static void PatchAll()
    {
        if (_patched) return;
        if (OperatingSystem.IsLinux())
            foreach (var path in CandidatePaths())
                TryPatch(path);
        _patched = true;
    }

    /// <summary>The shims TorchSharp could load: next to the app, next to TorchSharp.dll, in its NuGet package.</summary>
    internal static IEnumerable<string> CandidatePaths()
    {
        var dirs = new List<string> { AppContext.BaseDirectory };
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            dirs.Add(torchDir);
            dirs.Add(Path.Combine(torchDir, "cpu"));                               // TorchSharp's consolidated copy
            var packageRoot = Path.GetFullPath(Path.Combine(torchDir, "..", ".."));   // lib/net8.0 -> package root
            dirs.Add(Path.Combine(packageRoot, "runtimes", "linux-x64", "native"));
        }
        dirs.Add(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"));
        return dirs.Select(d => Path.Combine(d, "libLibTorchSharp.so")).Where(File.Exists).Distinct();
    }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 version need of an ELF64 little-endian file.</summary>
    /// <returns>true when the file was changed.</returns>
    internal static bool TryPatch(string path)
    {
        try
        {
            var d = File.ReadAllBytes(path);
            if (!PatchElf(d)) return false;
            var tmp = path + ".vrft-tmp";
            File.WriteAllBytes(tmp, d);
            File.Move(tmp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;   // read-only copies are reported by EnsureLoaded if loading then fails
        }
    }

    internal static bool PatchElf(byte[] d)
    {
        if (d.Length < 64 || d[0] != 0x7f || d[1] != (byte)'E' || d[2] != (byte)'L' || d[3] != (byte)'F' || d[4] != 2 || d[5] != 1)
            return false;
        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3A));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3C));
        bool changed = false;
        for (int i = 0; i < shnum; i++)
        {
            var sh = (int)(shoff + (long)i * shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 4)) != 0x6ffffffe) continue;   // SHT_GNU_verneed
            var off = (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(sh + 0x18));
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 0x28));
            var strSh = (int)(shoff + (long)link * shentsize);
            var strOff = (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(strSh + 0x18));
            var vn = off;
            while (true)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(vn + 2));
                var aux = vn + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 8));
                for (int j = 0; j < cnt; j++)
                {
                    var flags = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(aux + 4));
                    var name = strOff + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 8));
                    var end = Array.IndexOf(d, (byte)0, name);
                    if (Encoding.ASCII.GetString(d, name, end - name) == MissingVersion && (flags & 2) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(aux + 4), (ushort)(flags | 2));
                        changed = true;
                    }
                    var next = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 12));
                    if (next == 0) break;
                    aux += next;
                }
                var vnNext = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 12));
                if (vnNext == 0) break;
                vn += vnNext;
            }
        }
        return changed;
    }
}
