using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End);

/// <summary>
/// Reader and writer for the safetensors format (8-byte little-endian header length, a JSON header, then raw
/// little-endian data). The reader checks the header against the file before it allocates anything, so a crafted or
/// truncated file gives a <see cref="InvalidDataException"/> naming the file and the tensor, never a crash or a huge
/// allocation.
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers above this size are refused: real checkpoints stay far below it.</summary>
    public const long MaxHeaderBytes = 100L << 20;

    static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>Whether a safetensors dtype name is a floating-point type.</summary>
    public static bool IsFloatingPoint(string dtype) => dtype is "F64" or "F32" or "F16" or "BF16";

    /// <summary>The safetensors name of a dtype (<c>F32</c>, <c>BF16</c>, …), or null for one the format lacks.</summary>
    public static string? DTypeName(ScalarType type) => DTypes.FirstOrDefault(kv => kv.Value.Type == type).Key;

    /// <summary>Reads and validates the header of <paramref name="path"/>.</summary>
    public static (IReadOnlyList<SafeTensorInfo> Tensors, long DataStart, IReadOnlyDictionary<string, string> Metadata) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        using var fs = File.OpenRead(path);
        var fileLength = fs.Length;
        if (fileLength < 8) throw Bad(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        var headerLength = BitConverter.ToInt64(lenBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
            throw Bad(path, $"header length {headerLength} is impossible for a file of {fileLength} bytes");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        var dataStart = 8 + headerLength;
        var dataLength = fileLength - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Bad(path, "the header is not valid JSON: " + e.Message); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "the header is not a JSON object");

        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                if (p.Value.ValueKind == JsonValueKind.Object)
                    foreach (var m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                continue;
            }
            if (!names.Add(p.Name)) throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' is listed twice");
            tensors.Add(ParseEntry(path, p, dataLength));
        }
        // Two tensors sharing bytes would alias each other's weights (the reference reader refuses them too).
        SafeTensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin))
        {
            if (previous is not null && t.Begin < previous.End)
                throw Bad(path, $"tensors '{Excerpt.Of(previous.Name)}' [{previous.Begin}, {previous.End}) and '{Excerpt.Of(t.Name)}' [{t.Begin}, {t.End}) overlap");
            previous = t;
        }
        return (tensors, dataStart, metadata);
    }

    static SafeTensorInfo ParseEntry(string path, JsonProperty p, long dataLength)
    {
        var e = p.Value;
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' lacks dtype, shape or data_offsets");
        var dtype = dt.GetString()!;
        if (!DTypes.TryGetValue(dtype, out var info)) throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' has unsupported dtype {Excerpt.Of(dtype, 20)}");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (!d.TryGetInt64(out var v) || v < 0) throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' has an invalid dimension {Excerpt.Of(d.GetRawText(), 40)}");
            shape[i++] = v;
            count = v == 0 ? 0 : count > long.MaxValue / v ? throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' has an impossible size") : count * v;
        }
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
            throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' has offsets {Excerpt.Of(off.GetRawText(), 60)} outside the {dataLength} data bytes (truncated file?)");
        if (count > long.MaxValue / info.Size || end - begin != count * info.Size)
            throw Bad(path, $"tensor '{Excerpt.Of(p.Name)}' declares shape [{string.Join(",", shape)}] {dtype} ({count * (long)info.Size} bytes) but spans {end - begin} bytes");
        return new SafeTensorInfo(p.Name, dtype, shape, begin, end);
    }

    /// <summary>Loads every tensor of a file onto the CPU, converting floating tensors to <paramref name="floatType"/> when given.</summary>
    public static Dictionary<string, Tensor> Load(string path, ScalarType? floatType = null, Func<string, bool>? include = null)
    {
        var (tensors, dataStart, _) = ReadHeader(path);
        var result = new Dictionary<string, Tensor>();
        using var fs = File.OpenRead(path);
        foreach (var t in tensors)
        {
            if (include != null && !include(t.Name)) continue;
            result[t.Name] = ReadTensor(fs, dataStart, t, floatType);
        }
        return result;
    }

    static Tensor ReadTensor(FileStream fs, long dataStart, SafeTensorInfo t, ScalarType? floatType)
    {
        var type = DTypes[t.DType].Type;
        var tensor = torch.empty(t.Shape, type);
        var bytes = new byte[t.End - t.Begin];
        fs.Position = dataStart + t.Begin;
        fs.ReadExactly(bytes);
        if (bytes.Length > 0) tensor.bytes = bytes;
        if (floatType is { } ft && tensor.is_floating_point() && type != ft)
        {
            var converted = tensor.to_type(ft);
            tensor.Dispose();
            return converted;
        }
        return tensor;
    }

    /// <summary>Index files list a few thousand tensors; a larger one is refused before it is read.</summary>
    public const int MaxIndexBytes = 64 << 20;

    /// <summary>
    /// The weight files of a Hugging Face checkpoint folder: <c>model.safetensors</c>, or the shards that
    /// <c>model.safetensors.index.json</c> lists, each of which must be a relative path inside the folder.
    /// </summary>
    public static IReadOnlyList<string> FolderFiles(string folder)
    {
        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, "model.safetensors.index.json");
        if (!File.Exists(index))
            throw new FileNotFoundException($"neither model.safetensors nor model.safetensors.index.json exists in {folder}", single);
        var root = Path.GetFullPath(folder);
        var files = new List<string>();
        foreach (var (tensor, shard) in WeightMap(index))
        {
            var full = Path.GetFullPath(Path.Combine(root, shard));
            if (Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains("..") || !full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidDataException($"{index}: tensor '{Excerpt.Of(tensor)}' is mapped to '{Excerpt.Of(shard)}', which is not a file inside the model folder");
            if (!files.Contains(full)) files.Add(full);
        }
        foreach (var f in files)
            if (!File.Exists(f)) throw new FileNotFoundException($"{index} names shard {Path.GetRelativePath(root, f)}, which is missing", f);
        return files;
    }

    static List<(string Tensor, string Shard)> WeightMap(string index)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(BoundedFile.ReadAllText(index, MaxIndexBytes, "safetensors index")); }
        catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON: {e.Message}", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{index}: missing 'weight_map' (an object of tensor name → shard file)");
        return [.. map.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.String && p.Value.GetString()!.Length > 0 ? (p.Name, p.Value.GetString()!)
            : throw new InvalidDataException($"{index}: key 'weight_map.{Excerpt.Of(p.Name)}' must be a shard file name, got {Excerpt.Of(p.Value.GetRawText(), 40)}"))];
    }

    /// <summary>The headers of every weight file of a checkpoint folder (see <see cref="FolderFiles"/>), as tensor name →
    /// (entry, file); a tensor stored in two files is an error.</summary>
    public static IReadOnlyDictionary<string, (SafeTensorInfo Info, string File)> ReadFolderHeaders(string folder)
    {
        var result = new Dictionary<string, (SafeTensorInfo, string)>(StringComparer.Ordinal);
        foreach (var file in FolderFiles(folder))
            foreach (var t in ReadHeader(file).Tensors)
                if (!result.TryAdd(t.Name, (t, file)))
                    throw new InvalidDataException($"{file}: tensor '{Excerpt.Of(t.Name)}' is also stored in {result[t.Name].Item2}");
        return result;
    }

    /// <summary>Writes tensors (sorted by name, as the Python library does) atomically: a temporary file, then a rename.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var name in names)
        {
            using var cpu = tensors[name].detach().cpu().contiguous();
            var dtype = DTypes.First(kv => kv.Value.Type == cpu.dtype).Key;
            var bytes = cpu.bytes.ToArray();
            header[name] = new { dtype, shape = cpu.shape, data_offsets = new[] { offset, offset + bytes.Length } };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var pad = (8 - json.Length % 8) % 8;   // keeps tensor data 8-byte aligned, like the reference writer
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';
        AtomicFile.Write(path, fs =>
        {
            fs.Write(BitConverter.GetBytes((long)headerBytes.Length));
            fs.Write(headerBytes);
            foreach (var b in blobs) fs.Write(b);
        });
    }

    static InvalidDataException Bad(string path, string why) => new($"{path}: not a valid safetensors file: {why}");
}
