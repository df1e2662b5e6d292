using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using TorchSharp;

namespace VisualRft.Torch;

/// <summary>
/// Prepares TorchSharp's native shim <c>libLibTorchSharp.so</c> for loading, with two idempotent edits of its ELF header
/// (<see cref="PatchElf"/>), made to the copies next to TorchSharp.dll, in the app folder and in the NuGet package folder,
/// and to a shim that <c>VRFT_TORCHSHARP_NATIVE</c> names:
/// <list type="bullet">
/// <item>Debian 12: TorchSharp 0.107's shim was linked against GCC 13 and asks for <c>GLIBCXX_3.4.32</c>, which Debian 12
/// (GCC 12) lacks, so the first torch call fails with a misleading "doesn't contain a reference to libtorch-cpu-linux-x64"
/// (platform-notes.md §13). The only symbol of that version is an iostream initialiser with no relocation, so marking the
/// version need as weak (VER_FLG_WEAK) lets glibc load the library unchanged otherwise.</item>
/// <item>One shim per process: TorchSharp loads its shim by name (<c>NativeLibrary.TryLoad("LibTorchSharp", …)</c>), which
/// never asks a DllImport resolver and would find the package's copy in the app folder even after
/// <see cref="LibTorchBackend"/> loaded another by path. The .NET loader's first try is the bare name
/// <c>LibTorchSharp.so</c>, and glibc answers a bare name with an already loaded library of that soname; so the shim's
/// soname becomes <see cref="Soname"/> (its string <c>libLibTorchSharp.so</c> read from the fourth byte), and TorchSharp's
/// own load returns the shim already loaded.</item>
/// </list>
/// </summary>
static class NativeShim
{
    internal const string MissingVersion = "GLIBCXX_3.4.32";
    internal const string Soname = "LibTorchSharp.so";

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

    /// <summary>The files of this name (TorchSharp's shim by default) that this process has mapped, from /proc/self/maps
    /// (Linux; empty elsewhere). One is right: two shims mean TorchSharp loaded its own beside the one
    /// <see cref="LibTorchBackend"/> chose.</summary>
    public static IReadOnlyList<string> Mapped(string fileName = "libLibTorchSharp.so") => OperatingSystem.IsLinux() && File.Exists("/proc/self/maps")
        ? File.ReadLines("/proc/self/maps").Select(l => l.IndexOf('/') is var i and >= 0 ? l[i..] : "")
            .Where(p => Path.GetFileName(p) == fileName).Distinct().ToList()
        : [];

    /// <summary>Patches the shim <c>VRFT_TORCHSHARP_NATIVE</c> names, and refuses it in one line when its soname is not
    /// <see cref="Soname"/> afterwards (TorchSharp would then map its own shim beside it).</summary>
    internal static void PrepareNamed(string path)
    {
        TryPatch(path);
        var soname = SonameOf(File.ReadAllBytes(path));
        if (soname != Soname)
            throw new LibTorchBackendException($"{LibTorchBackend.ShimVariable}={path}: its soname is {soname ?? "not set"}, so TorchSharp would load its own shim beside it: "
                + $"link it with -Wl,-soname,{Soname}, or make it writable so that VisualRft can set that");
    }

    /// <summary>Applies <see cref="PatchElf"/> to a file, in place.</summary>
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

    /// <summary>Weakens the GLIBCXX_3.4.32 version need and renames <c>libLibTorchSharp.so</c> to <see cref="Soname"/>, in
    /// an ELF64 little-endian image; other files are left alone.</summary>
    /// <returns>true when <paramref name="d"/> was changed.</returns>
    internal static bool PatchElf(byte[] d)
    {
        if (!IsElf64(d)) return false;
        var changed = false;
        foreach (var (type, offset, size, strings) in Sections(d))
        {
            if (type == 0x6ffffffe) changed |= WeakenVersionNeed(d, offset, strings);   // SHT_GNU_verneed
            if (type == 6) changed |= RenameSoname(d, offset, size, strings);           // SHT_DYNAMIC
        }
        return changed;
    }

    /// <summary>The soname of an ELF64 little-endian image; null when it has none.</summary>
    internal static string? SonameOf(byte[] d)
    {
        if (!IsElf64(d)) return null;
        foreach (var (_, offset, size, strings) in Sections(d).Where(s => s.Type == 6))
            foreach (var e in Entries(d, offset, size).Where(e => e.Tag == 14))   // DT_SONAME
                return String(d, strings + (int)e.Value);
        return null;
    }

    static bool IsElf64(byte[] d) =>
        d.Length >= 64 && d[0] == 0x7f && d[1] == (byte)'E' && d[2] == (byte)'L' && d[3] == (byte)'F' && d[4] == 2 && d[5] == 1;

    /// <summary>Each section's type, file offset and size, and the file offset of the string table it links to.</summary>
    static IEnumerable<(uint Type, int Offset, int Size, int Strings)> Sections(byte[] d)
    {
        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3A));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(0x3C));
        for (int i = 0; i < shnum; i++)
        {
            var sh = (int)(shoff + (long)i * shentsize);
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 0x28));
            var strSh = (int)(shoff + (long)link * shentsize);
            yield return (BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(sh + 4)),
                (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(sh + 0x18)), (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(sh + 0x20)),
                (int)BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(strSh + 0x18)));
        }
    }

    static string String(byte[] d, int at) => Encoding.ASCII.GetString(d, at, Array.IndexOf(d, (byte)0, at) - at);

    static bool WeakenVersionNeed(byte[] d, int vn, int strings)
    {
        var changed = false;
        while (true)
        {
            int cnt = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(vn + 2));
            var aux = vn + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 8));
            for (int j = 0; j < cnt; j++)
            {
                var flags = BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(aux + 4));
                if (String(d, strings + (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 8))) == MissingVersion && (flags & 2) == 0)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(aux + 4), (ushort)(flags | 2));
                    changed = true;
                }
                var next = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(aux + 12));
                if (next == 0) break;
                aux += next;
            }
            var vnNext = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(vn + 12));
            if (vnNext == 0) return changed;
            vn += vnNext;
        }
    }

    static bool RenameSoname(byte[] d, int offset, int size, int strings)
    {
        var at = Entries(d, offset, size).FirstOrDefault(e => e.Tag == 14);   // DT_SONAME
        if (at.Tag != 14 || String(d, strings + (int)at.Value) != "lib" + Soname) return false;
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(at.At + 8), at.Value + 3);   // the same string, less its "lib"
        return true;
    }

    /// <summary>The tag, value and file offset of each entry of a dynamic section.</summary>
    static IEnumerable<(long Tag, ulong Value, int At)> Entries(byte[] d, int offset, int size)
    {
        for (var e = offset; e + 16 <= offset + size; e += 16)
            yield return (BinaryPrimitives.ReadInt64LittleEndian(d.AsSpan(e)), BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(e + 8)), e);
    }

    /// <summary>
    /// A library whose soname is <c>torch_cpu.so</c>, made once from <paramref name="folder"/>'s libtorch.so (a stub that
    /// only links libtorch_cpu.so and the like), in the temp folder. TorchSharp asks for <c>torch_cpu</c> by name when it
    /// first initialises the CPU device; the .NET loader tries the bare name <c>torch_cpu.so</c> before it probes the app
    /// folder for <c>libtorch_cpu.so</c>, and glibc answers a bare name with a loaded library of that soname. Loaded beside
    /// a <c>VRFT_LIBTORCH</c> folder, it keeps the package's libtorch_cpu in the app folder from being mapped as a second
    /// libtorch, which would register every operator again and abort the process.
    /// </summary>
    internal static string TorchCpuAlias(string folder)
    {
        var source = Path.Combine(folder, "libtorch.so");
        var d = File.ReadAllBytes(source);
        var changed = false;
        if (IsElf64(d))
            foreach (var (_, offset, size, strings) in Sections(d).Where(s => s.Type == 6))   // SHT_DYNAMIC
            {
                var entries = Entries(d, offset, size).ToList();
                var needed = entries.FirstOrDefault(e => e.Tag == 1 && String(d, strings + (int)e.Value) == "libtorch_cpu.so");   // DT_NEEDED
                var soname = entries.FirstOrDefault(e => e.Tag == 14);
                if (needed.Tag != 1 || soname.Tag != 14) continue;
                BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(soname.At + 8), needed.Value + 3);   // "torch_cpu.so"
                changed = true;
            }
        if (!changed)
            throw new LibTorchBackendException($"{LibTorchBackend.LibTorchVariable}={folder}: {source} has no soname or does not link libtorch_cpu.so, so TorchSharp "
                + "could load another libtorch_cpu beside it; point it at a PyTorch install's torch/lib or a libtorch archive's lib/");
        var path = Path.Combine(Path.GetTempPath(), "vrft-torch-cpu-alias", Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(d))[..16], "torch_cpu.so");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var tmp = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(tmp, d);
            File.Move(tmp, path, overwrite: true);
        }
        return path;
    }
}
