using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Parquet;
using Parquet.Schema;

namespace VisualRft.Data;

/// <summary>
/// One row of a Visual-RFT Hugging Face dataset (visual-rft-spec.md §5.1): the <c>image</c> column (encoded bytes, and the
/// file name it had), <c>problem</c> and <c>solution</c>.
/// </summary>
public sealed record HfRow(byte[] ImageBytes, string? ImagePath, string Problem, string Solution);

/// <summary>
/// Reads the two forms the ViRFT_* data sets come in: the Hub's parquet shards (<c>data/train-0000i-of-0000n.parquet</c>)
/// and a <c>datasets</c> <c>save_to_disk</c> folder (what the training scripts' <c>load_from_disk</c> expects:
/// <c>dataset_dict.json</c>, <c>train/state.json</c>, <c>train/data-0000i-of-0000n.arrow</c> in Arrow IPC stream format).
/// The image column is the <c>datasets</c> Image feature, a struct of <c>bytes</c> and <c>path</c>. Errors name the file
/// and the column.
/// </summary>
public static class HfDatasetReader
{
    /// <summary>
    /// Rows of <paramref name="path"/>: a .parquet or .arrow file, a folder of parquet shards (searched recursively, in
    /// name order), or a save_to_disk folder (its <paramref name="split"/>).
    /// </summary>
    public static IEnumerable<HfRow> Read(string path, string split = "train")
    {
        if (File.Exists(path))
            return path.EndsWith(".arrow", StringComparison.OrdinalIgnoreCase) ? ReadArrow(path) : ReadParquet(path);
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"no data set at {path}; `vrft download --list` names the data sets and how to get them");
        if (File.Exists(Path.Combine(path, "dataset_dict.json")) || File.Exists(Path.Combine(path, "state.json"))) return ReadSaveToDisk(path, split);
        var shards = Directory.GetFiles(path, "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        if (shards.Count == 0) throw new FileNotFoundException($"{path} holds neither parquet shards nor a save_to_disk data set (dataset_dict.json / state.json)");
        return shards.SelectMany(ReadParquet);
    }

    /// <summary>One parquet shard, row group by row group.</summary>
    public static IEnumerable<HfRow> ReadParquet(string file)
    {
        using var stream = File.OpenRead(file);
        var reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        try
        {
            var fields = reader.Schema.GetDataFields();
            DataField Field(string path) => fields.FirstOrDefault(f => f.Path.ToString() == path)
                ?? throw new InvalidDataException($"{file}: no column '{path}' (columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))})");
            DataField bytes = Field("image/bytes"), problem = Field("problem"), solution = Field("solution");
            var name = fields.FirstOrDefault(f => f.Path.ToString() == "image/path");
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                int n = checked((int)rg.RowCount);
                var b = new byte[]?[n];
                var p = new string?[n];
                var s = new string?[n];
                var names = new string?[n];
                rg.ReadAsync(bytes, b.AsMemory()).GetAwaiter().GetResult();
                rg.ReadAsync(problem, p.AsMemory()).GetAwaiter().GetResult();
                rg.ReadAsync(solution, s.AsMemory()).GetAwaiter().GetResult();
                if (name != null) rg.ReadAsync(name, names.AsMemory()).GetAwaiter().GetResult();
                for (int i = 0; i < n; i++) yield return Row(file, i, b[i], names[i], p[i], s[i]);
            }
        }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    /// <summary>A save_to_disk folder: the split's Arrow files in the order <c>state.json</c> lists them.</summary>
    public static IEnumerable<HfRow> ReadSaveToDisk(string folder, string split = "train")
    {
        var dir = folder;
        var dict = Path.Combine(folder, "dataset_dict.json");
        if (File.Exists(dict))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(dict));
            var splits = doc.RootElement.TryGetProperty("splits", out var sp) ? sp.EnumerateArray().Select(e => e.GetString()!).ToList() : [];
            if (!splits.Contains(split)) throw new KeyNotFoundException($"{dict}: no split '{split}' (splits: {string.Join(", ", splits)})");
            dir = Path.Combine(folder, split);
        }
        var state = Path.Combine(dir, "state.json");
        if (!File.Exists(state)) throw new FileNotFoundException($"{dir} is not a save_to_disk split: state.json is missing", state);
        using var stateDoc = JsonDocument.Parse(File.ReadAllText(state));
        if (!stateDoc.RootElement.TryGetProperty("_data_files", out var files) || files.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{state}: key '_data_files' must list the Arrow files");
        return files.EnumerateArray().Select(f => Path.Combine(dir, f.GetProperty("filename").GetString()!)).ToList().SelectMany(ReadArrow);
    }

    /// <summary>One Arrow IPC stream file (the <c>datasets</c> cache format), batch by batch.</summary>
    public static IEnumerable<HfRow> ReadArrow(string file)
    {
        using var stream = File.OpenRead(file);
        using var reader = new ArrowStreamReader(stream);
        var schema = reader.Schema ?? throw new InvalidDataException($"{file}: not an Arrow IPC stream");
        int Column(string name) => schema.GetFieldIndex(name) is var i && i >= 0 ? i
            : throw new InvalidDataException($"{file}: no column '{name}' (columns: {string.Join(", ", schema.FieldsList.Select(f => f.Name))})");
        int image = Column("image"), problem = Column("problem"), solution = Column("solution");
        int offset = 0;
        for (RecordBatch? batch; (batch = reader.ReadNextRecordBatch()) != null;)
            using (batch)
            {
                var img = batch.Column(image) as StructArray ?? throw new InvalidDataException($"{file}: column 'image' is not a struct of bytes and path");
                var imgType = (Apache.Arrow.Types.StructType)img.Data.DataType;
                var bytes = img.Fields[imgType.GetFieldIndex("bytes")] as BinaryArray ?? throw new InvalidDataException($"{file}: column 'image.bytes' is not binary");
                int pathIndex = imgType.GetFieldIndex("path");
                var paths = pathIndex >= 0 ? img.Fields[pathIndex] as StringArray : null;
                var p = batch.Column(problem) as StringArray ?? throw new InvalidDataException($"{file}: column 'problem' is not a string column");
                var s = batch.Column(solution) as StringArray ?? throw new InvalidDataException($"{file}: column 'solution' is not a string column");
                for (int i = 0; i < batch.Length; i++)
                    yield return Row(file, offset + i, bytes.IsNull(i) ? null : bytes.GetBytes(i).ToArray(), paths?.GetString(i), p.GetString(i), s.GetString(i));
                offset += batch.Length;
            }
    }

    static HfRow Row(string file, int row, byte[]? bytes, string? path, string? problem, string? solution) => new(
        bytes is { Length: > 0 } ? bytes : throw new InvalidDataException($"{file}: row {row} has no image bytes (column 'image.bytes')"),
        path,
        problem ?? throw new InvalidDataException($"{file}: row {row} has no 'problem'"),
        solution ?? throw new InvalidDataException($"{file}: row {row} has no 'solution'"));
}
