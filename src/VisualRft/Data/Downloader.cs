using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace VisualRft.Data;

/// <summary>Progress of one file: bytes on disk so far, total if known, bytes fetched this session.</summary>
public sealed record DownloadProgress(string File, long Done, long? Total, long FetchedNow, TimeSpan Elapsed);

/// <summary>What happened to one file.</summary>
public enum DownloadOutcome { Downloaded, Resumed, AlreadyPresent }

public sealed record DownloadResult(RemoteFile File, string Path, DownloadOutcome Outcome, bool Verified);

/// <summary>
/// Fetches files over HTTP(S) or from <c>file://</c> addresses into a folder: into <c>NAME.part</c> first, resuming a
/// partial file with a Range request (a server that ignores it restarts the file), then checks the published checksum
/// (md5, sha1 or sha256) and only then renames it to NAME. A file already present is re-checked and kept. Nothing runs
/// unless called: the CLI prints the plan first.
/// </summary>
public sealed class Downloader(HttpClient http)
{
    /// <summary>Where the Hugging Face Hub is; tests point it at a local listener.</summary>
    public Uri HubBase { get; init; } = new("https://huggingface.co/");

    public async Task<DownloadResult> DownloadAsync(RemoteFile file, string folder, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(folder);
        var target = Path.Combine(folder, file.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target))
        {
            if (Mismatch(file, target) is { } wrong)
                throw new InvalidDataException($"{target} is already there but {wrong}; delete it to download it again");
            return new DownloadResult(file, target, DownloadOutcome.AlreadyPresent, file.Checksum != null);
        }
        var part = target + ".part";
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        bool resumed;
        if (file.Url.IsFile)
        {
            using var src = File.OpenRead(file.Url.LocalPath);
            resumed = have > 0 && have <= src.Length;
            if (!resumed) have = 0;
            src.Seek(have, SeekOrigin.Begin);
            await Copy(src, part, have, src.Length, file.Name, progress, clock, ct);
        }
        else
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, file.Url);
            if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { File.Delete(part); return await DownloadAsync(file, folder, progress, ct); }
            if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{file.Url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            if (!resumed) have = 0;
            long? total = response.Content.Headers.ContentLength is { } len ? have + len : file.Bytes;
            using var body = await response.Content.ReadAsStreamAsync(ct);
            await Copy(body, part, have, total, file.Name, progress, clock, ct);
        }
        if (file.Bytes is { } expected && new FileInfo(part).Length != expected)
            throw new InvalidDataException($"{file.Name}: {new FileInfo(part).Length} bytes downloaded, {expected} expected; the partial file stays at {part} and the next run resumes it");
        if (Mismatch(file, part) is { } bad)
        {
            File.Delete(part);
            throw new InvalidDataException($"{file.Name} from {file.Url}: {bad}; the download was deleted");
        }
        File.Move(part, target);
        return new DownloadResult(file, target, resumed ? DownloadOutcome.Resumed : DownloadOutcome.Downloaded, file.Checksum != null);
    }

    static async Task Copy(Stream src, string part, long have, long? total, string name, IProgress<DownloadProgress>? progress, System.Diagnostics.Stopwatch clock, CancellationToken ct)
    {
        using var dst = new FileStream(part, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write);
        var buffer = new byte[1 << 16];
        long done = have, last = 0;
        for (int n; (n = await src.ReadAsync(buffer, ct)) > 0;)
        {
            await dst.WriteAsync(buffer.AsMemory(0, n), ct);
            done += n;
            if (done - last >= 1 << 20) { progress?.Report(new(name, done, total, done - have, clock.Elapsed)); last = done; }
        }
        progress?.Report(new(name, done, total, done - have, clock.Elapsed));
    }

    /// <summary>Null when the file's hash equals the published one (or none is published); else what differs.</summary>
    public static string? Mismatch(RemoteFile file, string path)
    {
        if (file.Checksum is not { } c) return null;
        using var hash = c.Algorithm.ToLowerInvariant() switch
        {
            "md5" => (HashAlgorithm)MD5.Create(), "sha1" => SHA1.Create(), "sha256" => SHA256.Create(),
            _ => throw new InvalidDataException($"{file.Name}: unsupported checksum algorithm '{c.Algorithm}'"),
        };
        using var stream = File.OpenRead(path);
        var actual = Convert.ToHexStringLower(hash.ComputeHash(stream));
        return string.Equals(actual, c.Value, StringComparison.OrdinalIgnoreCase) ? null
            : $"its {c.Algorithm} is {actual}, not the published {c.Value} ({c.From})";
    }

    /// <summary>
    /// The files of a Hugging Face data set repository, from the Hub's tree listing
    /// (<c>api/datasets/{repo}/tree/{revision}?recursive=true</c>): every data file (parquet, arrow, json) with the sha256
    /// of its LFS object as checksum; small non-LFS files are fetched unverified.
    /// </summary>
    public async Task<IReadOnlyList<RemoteFile>> ListHuggingFaceAsync(string repo, string revision, CancellationToken ct = default)
    {
        var listing = new Uri(HubBase, $"api/datasets/{repo}/tree/{revision}?recursive=true");
        using var response = await http.GetAsync(listing, ct);
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{listing}: HTTP {(int)response.StatusCode} listing the data set's files", null, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var files = new List<RemoteFile>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.GetProperty("type").GetString() != "file") continue;
            var path = e.GetProperty("path").GetString()!;
            if (!(path.EndsWith(".parquet") || path.EndsWith(".arrow") || path.EndsWith(".json"))) continue;
            var lfs = e.TryGetProperty("lfs", out var l) && l.ValueKind == JsonValueKind.Object ? l : (JsonElement?)null;
            files.Add(new RemoteFile(path, new Uri(HubBase, $"datasets/{repo}/resolve/{revision}/{path}"),
                e.TryGetProperty("size", out var s) ? s.GetInt64() : null,
                lfs is { } x ? new FileChecksum("sha256", x.GetProperty("oid").GetString()!, $"the Hub's LFS object id of {repo}@{revision}") : null));
        }
        if (files.Count == 0) throw new InvalidDataException($"{listing}: no data files listed");
        return files;
    }

    /// <summary>The files a data set consists of; refuses (with how to get it) a data set that must be fetched by hand.</summary>
    public async Task<IReadOnlyList<RemoteFile>> FilesOf(PaperDataset dataset, CancellationToken ct = default) => dataset.Source switch
    {
        DataSource.Files => dataset.Files,
        DataSource.HuggingFace => await ListHuggingFaceAsync(dataset.HuggingFaceRepo!, dataset.HuggingFaceRevision, ct),
        _ => throw new InvalidOperationException($"'{dataset.Name}' ({dataset.Title}) cannot be downloaded automatically. {dataset.HowToGet}"),
    };
}
