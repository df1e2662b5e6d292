using System.Diagnostics;
using System.Text;
using System.Text.Json;
using VisualRft.Cli;
using VisualRft.Rewards;

namespace VisualRft.Bench;

/// <summary>
/// <c>serve [SOAK_SECONDS]</c>: <c>vrft score</c>'s lines/s on detection completions, then the reward server over
/// loopback in this process: completions/s for batches of 1, 64 and 1024 with one client per core, the latency of
/// 64-item batches from one client (p50/p99), and, with SOAK_SECONDS, that many seconds of concurrent clients with the
/// errors counted and the server's working set every minute (flat memory: no growth after warm-up).
/// The clients share the machine's cores with the server, as a trainer's reward workers would on one node.
/// </summary>
static class ServeBench
{
    public static int Run(int soakSeconds)
    {
        var rng = new Random(0);
        var items = Enumerable.Range(0, 1024).Select(_ => Item(rng)).ToArray();
        var lines = items.Select(i => JsonSerializer.Serialize(i)).ToArray();
        var reward = Rewards.Rewards.Detection();

        // vrft score: the same lines from memory to a null writer, best of three
        var input = Encoding.UTF8.GetBytes(string.Join("\n", Enumerable.Repeat(lines, 20).SelectMany(l => l)));
        double best = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            var sw = Stopwatch.StartNew();
            var (scored, _) = ScoreCommand.Run(new MemoryStream(input), TextWriter.Null, reward);
            best = Math.Max(best, scored / sw.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"vrft score (detection, visual-rft, in memory): {best:N0} lines/s on one thread");

        return Serve(lines, soakSeconds).GetAwaiter().GetResult();
    }

    static Dictionary<string, string> Item(Random rng)
    {
        string Box(int x, int y) => $"{{'Position': [{x}, {y}, {x + rng.Next(20, 300)}, {y + rng.Next(20, 300)}], 'Confidence': {rng.Next(1, 100) / 100.0}}}";
        int n = rng.Next(1, 4);
        var predicted = string.Join(", ", Enumerable.Range(0, n).Select(_ => Box(rng.Next(0, 600), rng.Next(0, 600))));
        var truth = string.Join(", ", Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Box(rng.Next(0, 600), rng.Next(0, 600))));
        return new()
        {
            ["completion"] = $"<think>I see {n} objects.</think><answer>[{predicted}]</answer>",
            ["solution"] = $"<answer>[{truth}]</answer>",
        };
    }

    static async Task<int> Serve(string[] lines, int soakSeconds)
    {
        await using var server = await RewardServer.StartAsync(new RewardServerOptions { Port = 0 }, TextWriter.Null);
        using var client = new HttpClient { BaseAddress = server.Address };
        int clients = Environment.ProcessorCount;
        Console.WriteLine($"server {server.Address} (in this process, request log off), {clients} clients, {Environment.ProcessorCount} cores");
        foreach (int batch in new[] { 1, 64, 1024 })
        {
            var body = "[" + string.Join(",", lines.Take(batch)) + "]";
            await Load(client, body, clients, TimeSpan.FromSeconds(1));   // warm-up: JIT, connections
            var (requests, errors, elapsed) = await Load(client, body, clients, TimeSpan.FromSeconds(5));
            Console.WriteLine($"batch {batch,5}: {requests * (double)batch / elapsed.TotalSeconds,10:N0} completions/s ({requests / elapsed.TotalSeconds:N0} requests/s, {errors} errors)");
        }
        {
            var body = "[" + string.Join(",", lines.Take(64)) + "]";
            var times = new List<double>();
            for (int i = 0; i < 1100; i++)
            {
                var sw = Stopwatch.StartNew();
                await Send(client, body);
                if (i >= 100) times.Add(sw.Elapsed.TotalMilliseconds);   // the first 100 warm up
            }
            times.Sort();
            Console.WriteLine($"64-item batch latency, one client, {times.Count} requests: p50 {times[times.Count / 2]:F2} ms, p99 {times[(int)(times.Count * 0.99)]:F2} ms, max {times[^1]:F2} ms");
        }
        if (soakSeconds > 0)
        {
            var bodies = new[] { 1, 64, 1024 }.Select(b => "[" + string.Join(",", lines.Take(b)) + "]").ToArray();
            long total = 0, failed = 0;
            var until = DateTime.UtcNow.AddSeconds(soakSeconds);
            var workers = Enumerable.Range(0, clients * 2).Select(w => Task.Run(async () =>
            {
                for (int i = w; DateTime.UtcNow < until; i++)
                {
                    if (!await Send(client, bodies[i % bodies.Length])) Interlocked.Increment(ref failed);
                    Interlocked.Increment(ref total);
                }
            })).ToArray();
            var start = DateTime.UtcNow;
            while (!Task.WaitAll(workers, TimeSpan.FromSeconds(Math.Min(60, soakSeconds))))
                Console.WriteLine($"soak {(DateTime.UtcNow - start).TotalSeconds,5:F0} s: {Interlocked.Read(ref total):N0} requests, {Interlocked.Read(ref failed)} errors, working set {Process.GetCurrentProcess().WorkingSet64 / 1e6:F0} MB, GC heap {GC.GetTotalMemory(false) / 1e6:F0} MB");
            Console.WriteLine($"soak done: {total:N0} requests in {soakSeconds} s with {clients * 2} clients, {failed} errors, working set {Process.GetCurrentProcess().WorkingSet64 / 1e6:F0} MB");
            if (failed > 0) return 1;
        }
        return 0;
    }

    static async Task<(long Requests, long Errors, TimeSpan Elapsed)> Load(HttpClient client, string body, int clients, TimeSpan duration)
    {
        long requests = 0, errors = 0;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            while (sw.Elapsed < duration)
            {
                if (!await Send(client, body)) Interlocked.Increment(ref errors);
                Interlocked.Increment(ref requests);
            }
        })));
        return (requests, errors, sw.Elapsed);
    }

    static async Task<bool> Send(HttpClient client, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync("/score", content);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        return response.IsSuccessStatusCode && bytes.Length > 0 && bytes.AsSpan().IndexOf("\"error\""u8) < 0;
    }
}
