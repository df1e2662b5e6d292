using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using VisualRft.Data;

namespace VisualRft.Tests.Data;

/// <summary>The downloader against a listener on the loopback address and file:// sources; no test touches the network.</summary>
public sealed class DownloaderTests : IDisposable
{
    static readonly byte[] Payload = [.. Enumerable.Range(0, 3_000_000).Select(i => (byte)(i * 7919 % 251))];
    static readonly string Sha256 = Convert.ToHexStringLower(SHA256.HashData(Payload));

    readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("vrft-dl-");
    readonly HttpListener listener = new();
    readonly Uri root;
    readonly HttpClient http = new();
    readonly List<string> ranges = [];

    public DownloaderTests()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        root = new Uri($"http://127.0.0.1:{port}/");
        listener.Prefixes.Add(root.ToString());
        listener.Start();
        _ = Task.Run(Serve);
    }

    async Task Serve()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); } catch { return; }
            var path = ctx.Request.Url!.AbsolutePath;
            var range = ctx.Request.Headers["Range"];
            lock (ranges) ranges.Add(range ?? "");
            byte[] body = path switch
            {
                "/api/datasets/org/ds/tree/main" => Encoding.UTF8.GetBytes($$"""
                    [{"type":"directory","path":"data"},{"type":"file","path":".gitattributes","size":10},
                     {"type":"file","path":"data/train-00000-of-00001.parquet","size":{{Payload.Length}},"lfs":{"oid":"{{Sha256}}","size":{{Payload.Length}} } }]
                    """),
                "/missing" => [],
                _ => Payload,
            };
            if (path == "/missing") ctx.Response.StatusCode = 404;
            long from = 0;
            if (range is { } r && path != "/no-ranges" && r.StartsWith("bytes=") && body == Payload)
            {
                from = long.Parse(r["bytes=".Length..].TrimEnd('-'));
                ctx.Response.StatusCode = 206;
                ctx.Response.Headers["Content-Range"] = $"bytes {from}-{body.Length - 1}/{body.Length}";
            }
            ctx.Response.ContentLength64 = body.Length - from;
            try { await ctx.Response.OutputStream.WriteAsync(body.AsMemory((int)from)); ctx.Response.Close(); } catch (HttpListenerException) { }
        }
    }

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        http.Dispose();
        dir.Delete(true);
    }

    RemoteFile File(string path, string? sha = null) => new("payload.bin", new Uri(root, path), Payload.Length, new FileChecksum("sha256", sha ?? Sha256, "test"));

    [Fact]
    public async Task Downloads_verifies_and_reports_progress()
    {
        var seen = new List<DownloadProgress>();
        var r = await new Downloader(http).DownloadAsync(File("/payload.bin"), dir.FullName, new SyncProgress(seen.Add));
        Assert.Equal(DownloadOutcome.Downloaded, r.Outcome);
        Assert.True(r.Verified);
        Assert.Equal(Payload, System.IO.File.ReadAllBytes(r.Path));
        Assert.False(System.IO.File.Exists(r.Path + ".part"));
        Assert.True(seen.Count >= 2, $"{seen.Count} progress reports");
        Assert.Equal(Payload.Length, seen[^1].Done);
        Assert.Equal(Payload.Length, seen[^1].Total);
        var again = await new Downloader(http).DownloadAsync(File("/payload.bin"), dir.FullName);
        Assert.Equal(DownloadOutcome.AlreadyPresent, again.Outcome);
    }

    [Fact]
    public async Task Resumes_a_partial_file_with_a_range_request_and_restarts_where_ranges_are_ignored()
    {
        var part = Path.Combine(dir.FullName, "payload.bin.part");
        await System.IO.File.WriteAllBytesAsync(part, Payload[..1_000_000]);
        var r = await new Downloader(http).DownloadAsync(File("/payload.bin"), dir.FullName);
        Assert.Equal(DownloadOutcome.Resumed, r.Outcome);
        Assert.Contains("bytes=1000000-", ranges);
        Assert.Equal(Payload, System.IO.File.ReadAllBytes(r.Path));

        var other = Directory.CreateDirectory(Path.Combine(dir.FullName, "other"));
        await System.IO.File.WriteAllBytesAsync(Path.Combine(other.FullName, "payload.bin.part"), new byte[500]);   // junk, and a server without ranges
        var restarted = await new Downloader(http).DownloadAsync(File("/no-ranges"), other.FullName);
        Assert.Equal(DownloadOutcome.Downloaded, restarted.Outcome);
        Assert.Equal(Payload, System.IO.File.ReadAllBytes(restarted.Path));
    }

    [Fact]
    public async Task A_checksum_mismatch_keeps_nothing_and_names_both_values()
    {
        var wrong = new string('0', 64);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => new Downloader(http).DownloadAsync(File("/payload.bin", wrong), dir.FullName));
        Assert.Contains(wrong, e.Message);
        Assert.Contains(Sha256, e.Message);
        Assert.Empty(dir.GetFiles());
        await Assert.ThrowsAsync<HttpRequestException>(() => new Downloader(http).DownloadAsync(File("/missing"), dir.FullName));
    }

    [Fact]
    public async Task File_sources_resume_too()
    {
        var source = Path.Combine(dir.FullName, "source.bin");
        await System.IO.File.WriteAllBytesAsync(source, Payload);
        var target = Directory.CreateDirectory(Path.Combine(dir.FullName, "target"));
        await System.IO.File.WriteAllBytesAsync(Path.Combine(target.FullName, "payload.bin.part"), Payload[..123_456]);
        var r = await new Downloader(http).DownloadAsync(new RemoteFile("payload.bin", new Uri(source), null, new FileChecksum("sha256", Sha256, "test")), target.FullName);
        Assert.Equal(DownloadOutcome.Resumed, r.Outcome);
        Assert.Equal(Payload, System.IO.File.ReadAllBytes(r.Path));
    }

    [Fact]
    public async Task Hugging_Face_files_come_from_the_hub_listing_with_their_LFS_sha256()
    {
        var d = new Downloader(http) { HubBase = root };
        var files = await d.ListHuggingFaceAsync("org/ds", "main");
        var f = Assert.Single(files);
        Assert.Equal("data/train-00000-of-00001.parquet", f.Name);
        Assert.Equal(new Uri(root, "datasets/org/ds/resolve/main/data/train-00000-of-00001.parquet"), f.Url);
        Assert.Equal(Sha256, f.Checksum!.Value);
        var r = await d.DownloadAsync(f, dir.FullName);
        Assert.True(r.Verified);
        Assert.Equal(Path.Combine(dir.FullName, "data", "train-00000-of-00001.parquet"), r.Path);
    }

    [Fact]
    public async Task Manual_data_sets_are_refused_with_how_to_get_them()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new Downloader(http).FilesOf(PaperDatasets.Get("stanford-cars-test")));
        Assert.Contains("cars_test", e.Message);
    }

    sealed class SyncProgress(Action<DownloadProgress> a) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => a(value);
    }
}

public class PaperDatasetsTests
{
    [Fact]
    public void Every_manifest_parses_and_says_where_its_data_comes_from()
    {
        Assert.Equal(16, PaperDatasets.Names.Count);
        foreach (var d in PaperDatasets.All)
        {
            Assert.NotEmpty(d.HowToGet);
            Assert.NotEmpty(d.Licence);
            foreach (var f in d.Files)
                if (f.Checksum is { } c)
                    Assert.Matches(c.Algorithm switch { "md5" => "^[0-9a-f]{32}$", "sha1" => "^[0-9a-f]{40}$", _ => "^[0-9a-f]{64}$" }, c.Value);
        }
        Assert.Equal(32, PaperDatasets.Get("virft-coco-8-cate-4-shot").Splits["train"]);
        Assert.Equal(102, PaperDatasets.Get("flowers102-test").Categories.Count);
        Assert.Equal(196, PaperDatasets.Get("stanford-cars-test").Categories.Count);
        Assert.Equal(80, PaperDatasets.Get("coco-2017-val").Categories.Count);
        Assert.All(PaperDatasets.Get("visual-rft-eval-files").Files, f => Assert.Equal("sha256", f.Checksum!.Algorithm));
        Assert.DoesNotContain(PaperDatasets.Names, n => VisualRft.Data.SyntheticDatasets.Names.Contains(n));
    }

    [Fact]
    public void Missing_data_says_how_to_get_it()
    {
        var e = Assert.Throws<FileNotFoundException>(() => PaperDatasets.RequireLocal("coco-2017-val", Path.Combine(Path.GetTempPath(), "vrft-nowhere")));
        Assert.Contains("vrft download coco-2017-val", e.Message);
    }
}
