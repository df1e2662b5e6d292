using System.CommandLine;
using System.Globalization;
using VisualRft.Data;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft download NAME [--to DIR]</c> fetches a data set of the paper (<see cref="PaperDatasets"/>) into DIR
/// (default <c>data/NAME</c>): prints the plan first, shows a progress bar, resumes partial files, checks every
/// published checksum. <c>vrft download --list</c> lists the data sets, their sources, licences and checksum status.
/// </summary>
public static class DownloadCommand
{
    public static Command Create(Func<Downloader>? downloader = null)
    {
        var name = new Argument<string?>("name") { Description = "data set name (see --list)", Arity = ArgumentArity.ZeroOrOne };
        var to = new Option<DirectoryInfo?>("--to") { Description = "target folder (default: data/NAME)" };
        var list = new Option<bool>("--list") { Description = "list the paper's data sets" };
        var cmd = new Command("download", "Download a data set of the paper, with checksum verification and resume") { name, to, list };
        cmd.SetAction(async (parse, ct) =>
        {
            var o = parse.InvocationConfiguration.Output;
            if (parse.GetValue(list) || parse.GetValue(name) is null)
            {
                foreach (var d in PaperDatasets.All)
                {
                    var sums = d.Source switch
                    {
                        DataSource.Files => $"{d.Files.Count(f => f.Checksum != null)}/{d.Files.Count} files with a published checksum",
                        DataSource.HuggingFace => "sha256 from the Hub listing",
                        _ => "manual download",
                    };
                    o.WriteLine($"{d.Name,-32} tables {string.Join(",", d.Tables),-10} {d.Title}; {sums}; licence: {d.Licence}");
                }
                return 0;
            }
            var requested = parse.GetValue(name)!;
            if (!PaperDatasets.Names.Contains(requested))
                throw new OptionException("name", $"no paper data set '{requested}' (known: {string.Join(", ", PaperDatasets.Names)})");
            var dataset = PaperDatasets.Get(requested);
            if (dataset.Source == DataSource.Manual)
                throw new OptionException("name", $"'{dataset.Name}' ({dataset.Title}) cannot be downloaded automatically. {dataset.HowToGet}");
            var folder = parse.GetValue(to)?.FullName ?? Path.GetFullPath(Path.Combine("data", dataset.Name));
            using var http = new HttpClient();
            var client = downloader?.Invoke() ?? new Downloader(http);
            var files = await client.FilesOf(dataset, ct);
            long known = files.Sum(f => f.Bytes ?? 0);
            o.WriteLine($"{dataset.Title}: {files.Count} file(s){(known > 0 ? $", {Mb(known)}" : "")} to {folder}");
            foreach (var f in files)
                o.WriteLine($"  {f.Name}  {f.Url}  {(f.Checksum is { } c ? $"{c.Algorithm} {c.Value}" : "no published checksum: not verified")}");
            foreach (var f in files)
            {
                var r = await client.DownloadAsync(f, folder, new SynchronousProgress(p => o.Write("\r" + Bar(p))), ct);
                o.WriteLine($"\r{f.Name}: {r.Outcome.ToString().ToLowerInvariant()}{(r.Verified ? ", checksum verified" : ", not verified (no published checksum)")}".PadRight(100));
            }
            o.WriteLine($"done: {folder}. Next: {dataset.HowToGet}");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>[#####-----]  52%  10.2/19.6 MB  3.1 MB/s  name</c>.</summary>
    public static string Bar(DownloadProgress p)
    {
        double rate = p.Elapsed.TotalSeconds > 0 ? p.FetchedNow / p.Elapsed.TotalSeconds : 0;
        if (p.Total is not > 0) return $"{Mb(p.Done)}  {Mb((long)rate)}/s  {p.File}";
        double f = Math.Clamp((double)p.Done / p.Total.Value, 0, 1);
        int filled = (int)(f * 30);
        return $"[{new string('#', filled)}{new string('-', 30 - filled)}] {f,4:P0}  {Mb(p.Done)}/{Mb(p.Total.Value)}  {Mb((long)rate)}/s  {p.File}";
    }

    static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB";

    /// <summary>Reports on the caller's thread, so that the bar is drawn in order.</summary>
    sealed class SynchronousProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
