using System.Reflection;

namespace VisualRft.Data;

/// <summary>
/// Finds dataset manifests by name: first <c>data-manifests/{name}.json</c> in the working directory or one of its parents
/// (so that a repository checkout can edit them), then the copies embedded in this assembly (so that a NuGet install works
/// offline). A name ending in ".json" is read as a file path.
/// </summary>
public static class SyntheticDatasets
{
    public const string FolderName = "data-manifests";
    const string ResourcePrefix = "VisualRft.DataManifests.";

    /// <summary>The names of the manifests embedded in the package.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        .. typeof(SyntheticDatasets).Assembly.GetManifestResourceNames()
            .Where(r => r.StartsWith(ResourcePrefix, StringComparison.Ordinal) && r.EndsWith(".json", StringComparison.Ordinal))
            .Select(r => r[ResourcePrefix.Length..^".json".Length]).Order(StringComparer.Ordinal),
    ];

    /// <summary>Generates the named dataset (see <see cref="SyntheticDataset.FromManifest"/> for the overrides).</summary>
    public static SyntheticDataset Load(string nameOrPath, int? shots = null, int? testSize = null, int? seed = null, int? imageSize = null) =>
        SyntheticDataset.FromManifest(Manifest(nameOrPath), shots, testSize, seed, imageSize);

    public static DatasetManifest Manifest(string nameOrPath, string? searchFrom = null)
    {
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return DatasetManifest.Load(nameOrPath);
        var folder = FindFolder(searchFrom ?? Directory.GetCurrentDirectory());
        var file = folder == null ? null : Path.Combine(folder, nameOrPath + ".json");
        // Anything at that path is the manifest, also a folder or a broken link: Load refuses those by name instead of
        // falling back to the embedded copy without a word.
        if (file != null && (Path.Exists(file) || new FileInfo(file).LinkTarget is not null)) return Checked(DatasetManifest.Load(file), nameOrPath);
        return Checked(Embedded(nameOrPath), nameOrPath);
    }

    /// <summary>The manifest embedded in the assembly, ignoring any folder on disk.</summary>
    public static DatasetManifest Embedded(string name)
    {
        using var stream = typeof(SyntheticDatasets).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".json")
            ?? throw new ArgumentException($"unknown dataset '{name}' (embedded: {string.Join(", ", Names)}; or pass a path to a .json manifest)", nameof(name));
        using var reader = new StreamReader(stream);
        return DatasetManifest.Parse(reader.ReadToEnd(), "embedded:" + name);
    }

    /// <summary>The nearest <c>data-manifests</c> folder at or above <paramref name="start"/>, or null.</summary>
    public static string? FindFolder(string start)
    {
        for (var d = new DirectoryInfo(Path.GetFullPath(start)); d != null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, FolderName);
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    static DatasetManifest Checked(DatasetManifest m, string name) =>
        m.Name == name ? m : throw new InvalidDataException($"{m.Source}: key 'name' is '{m.Name}' but the file is looked up as '{name}'");
}
