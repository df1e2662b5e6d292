using System.Text.Json;

namespace VisualRft.Data;

/// <summary>A published checksum of a file and where the value comes from.</summary>
public sealed record FileChecksum(string Algorithm, string Value, string From);

/// <summary>One file to fetch; <paramref name="Checksum"/> null where no value is known (the download is then not verified).</summary>
public sealed record RemoteFile(string Name, Uri Url, long? Bytes, FileChecksum? Checksum);

/// <summary>Where a data set comes from: a list of files, a Hugging Face data set repository (files listed at download time), or by hand.</summary>
public enum DataSource { Files, HuggingFace, Manual }

/// <summary>
/// A data set the paper uses, read from <c>data-manifests/paper/{name}.json</c> (embedded in the assembly): what it is,
/// which tables use it, sizes, categories, licence, and how to get it. A separate schema from the synthetic manifests
/// (<see cref="DatasetManifest"/>). Licences and checksums say "unknown" where they could not be verified.
/// </summary>
public sealed record PaperDataset(
    string Name, string Title, IReadOnlyList<int> Tables, string Task, string Role, string Format, string Homepage, string Licence,
    IReadOnlyDictionary<string, int> Splits, IReadOnlyList<string> Categories, DataSource Source, string? HuggingFaceRepo,
    string HuggingFaceRevision, IReadOnlyList<RemoteFile> Files, string HowToGet, IReadOnlyList<string> Notes);

/// <summary>The catalogue of <see cref="PaperDataset"/> manifests shipped with the package.</summary>
public static class PaperDatasets
{
    const string ResourcePrefix = "VisualRft.PaperManifests.";

    public static IReadOnlyList<string> Names { get; } =
    [
        .. typeof(PaperDatasets).Assembly.GetManifestResourceNames()
            .Where(r => r.StartsWith(ResourcePrefix, StringComparison.Ordinal) && r.EndsWith(".json", StringComparison.Ordinal))
            .Select(r => r[ResourcePrefix.Length..^".json".Length]).Order(StringComparer.Ordinal),
    ];

    public static IReadOnlyList<PaperDataset> All => [.. Names.Select(Get)];

    public static PaperDataset Get(string name)
    {
        using var stream = typeof(PaperDatasets).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".json")
            ?? throw new ArgumentException($"unknown paper data set '{name}' (known: {string.Join(", ", Names)})", nameof(name));
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), "embedded:paper/" + name);
    }

    /// <summary>Parses a paper data-set manifest; errors name the source and the key.</summary>
    public static PaperDataset Parse(string json, string source)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        string Str(JsonElement e, string key) => e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw new InvalidDataException($"{source}: key '{key}' must be a string");
        var src = r.GetProperty("source");
        var kind = Str(src, "kind") switch
        {
            "files" => DataSource.Files, "huggingface" => DataSource.HuggingFace, "manual" => DataSource.Manual,
            var k => throw new InvalidDataException($"{source}: key 'source.kind' must be files, huggingface or manual, got '{k}'"),
        };
        var files = kind == DataSource.Files ? src.GetProperty("files").EnumerateArray().Select(f => new RemoteFile(
            Str(f, "name"), new Uri(Str(f, "url")), f.TryGetProperty("bytes", out var b) && b.ValueKind == JsonValueKind.Number ? b.GetInt64() : null,
            f.TryGetProperty("checksum", out var c) && c.ValueKind == JsonValueKind.Object ? new FileChecksum(Str(c, "algorithm"), Str(c, "value"), Str(c, "from")) : null)).ToList() : [];
        return new PaperDataset(
            Str(r, "name"), Str(r, "title"), [.. r.GetProperty("tables").EnumerateArray().Select(t => t.GetInt32())], Str(r, "task"), Str(r, "role"),
            Str(r, "format"), Str(r, "homepage"), Str(r, "licence"),
            r.GetProperty("splits").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32()),
            r.TryGetProperty("categories", out var cats) ? [.. cats.EnumerateArray().Select(x => x.GetString()!)] : [],
            kind, kind == DataSource.HuggingFace ? Str(src, "repo") : null, kind == DataSource.HuggingFace ? Str(src, "revision") : "",
            files, Str(r, "howToGet"), [.. r.GetProperty("notes").EnumerateArray().Select(x => x.GetString()!)]);
    }

    /// <summary>
    /// The folder <paramref name="folder"/> if it holds the data set's files; otherwise an exception whose message says
    /// what is missing and how to get it. Nothing is downloaded.
    /// </summary>
    public static string RequireLocal(string name, string folder)
    {
        var d = Get(name);
        var missing = !Directory.Exists(folder) ? [folder]
            : d.Source == DataSource.Files ? d.Files.Select(f => Path.Combine(folder, f.Name)).Where(p => !File.Exists(p)).ToList()
            : Directory.EnumerateFileSystemEntries(folder).Any() ? [] : [folder];
        if (missing.Count == 0) return folder;
        throw new FileNotFoundException($"data set '{name}' ({d.Title}) is not in {folder}: missing {string.Join(", ", missing)}. To get it: {d.HowToGet}");
    }
}
