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
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                if (p.Value.ValueKind == JsonValueKind.Object)
                    foreach (var m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                continue;
            }
            tensors.Add(ParseEntry(path, p, dataLength));
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
            throw Bad(path, $"tensor '{p.Name}' lacks dtype, shape or data_offsets");
        var dtype = dt.GetString()!;
        if (!DTypes.TryGetValue(dtype, out var info)) throw Bad(path, $"tensor '{p.Name}' has unsupported dtype {dtype}");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (!d.TryGetInt64(out var v) || v < 0) throw Bad(path, $"tensor '{p.Name}' has an invalid dimension {d.GetRawText()}");
            shape[i++] = v;
            count = v == 0 ? 0 : count > long.MaxValue / v ? throw Bad(path, $"tensor '{p.Name}' has an impossible size") : count * v;
        }
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
            throw Bad(path, $"tensor '{p.Name}' has offsets {off.GetRawText()} outside the {dataLength} data bytes (truncated file?)");
        if (count > long.MaxValue / info.Size || end - begin != count * info.Size)
            throw Bad(path, $"tensor '{p.Name}' declares shape [{string.Join(",", shape)}] {dtype} ({count * (long)info.Size} bytes) but spans {end - begin} bytes");
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

    /// <summary>
    /// Loads a Hugging Face checkpoint folder: <c>model.safetensors</c>, or the shards listed in
    /// <c>model.safetensors.index.json</c>.
    /// </summary>
    public static Dictionary<string, Tensor> LoadFolder(string folder, ScalarType? floatType = null)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var file in CheckpointFiles(folder))
            foreach (var (k, v) in Load(file, floatType)) result[k] = v;
        return result;
    }

    /// <summary>
    /// The weight files of a Hugging Face checkpoint folder: <c>model.safetensors</c>, or the shards listed in
    /// <c>model.safetensors.index.json</c>, checked to exist and to hold every tensor the index maps to them.
    /// </summary>
    public static IReadOnlyList<string> CheckpointFiles(string folder)
    {
        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, "model.safetensors.index.json");
        if (!File.Exists(index))
            throw new FileNotFoundException($"neither model.safetensors nor model.safetensors.index.json exists in {folder}", single);
        using var doc = JsonDocument.Parse(File.ReadAllText(index));
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{index}: missing 'weight_map'");
        var shards = map.EnumerateObject().Select(p => p.Value.GetString()!).Distinct().ToList();
        var names = new Dictionary<string, HashSet<string>>();
        foreach (var shard in shards)
        {
            var shardPath = Path.Combine(folder, shard);
            if (!File.Exists(shardPath)) throw new FileNotFoundException($"{index} names shard {shard}, which is missing", shardPath);
            names[shard] = ReadHeader(shardPath).Tensors.Select(t => t.Name).ToHashSet();
        }
        foreach (var p in map.EnumerateObject())
            if (!names[p.Value.GetString()!].Contains(p.Name))
                throw new InvalidDataException($"{index} maps '{p.Name}' to {p.Value.GetString()}, but that shard has no such tensor");
        return [.. shards.Select(s => Path.Combine(folder, s))];
    }

    /// <summary>The safetensors name of a dtype (<c>F32</c>, <c>BF16</c>, …), or null for one the format lacks.</summary>
    public static string? DTypeName(ScalarType type) => DTypes.FirstOrDefault(kv => kv.Value.Type == type).Key;

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
