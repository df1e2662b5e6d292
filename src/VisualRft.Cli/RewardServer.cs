using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;

namespace VisualRft.Cli;

/// <summary>Limits and defaults of <see cref="RewardServer"/> (the options of <c>vrft serve-rewards</c>).</summary>
public sealed record RewardServerOptions
{
    /// <summary>Loopback by default: the server has no authentication, so exposing it is the user's explicit choice.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests, the benchmark); the bound address is <see cref="RewardServer.Address"/>.</summary>
    public int Port { get; init; } = 8000;
    /// <summary>The task and preset of an item that names none (and of every OpenRLHF request, which cannot name one).</summary>
    public VisualTask Task { get; init; } = VisualTask.Detection;
    public RewardPreset Preset { get; init; } = RewardPreset.VisualRft;
    /// <summary>Larger bodies are refused with 413 before they are read (Kestrel's MaxRequestBodySize).</summary>
    public long MaxBodyBytes { get; init; } = 64L << 20;
    /// <summary>Items per request; a longer batch is refused with 413.</summary>
    public int MaxBatch { get; init; } = 16_384;
    /// <summary>From arrival to the last item scored, waiting for a scoring slot included; past it the answer is 503.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Requests scored at once; the others wait for a slot (within their timeout). Scoring is CPU-bound, so more
    /// than one per core only adds switching.</summary>
    public int MaxConcurrency { get; init; } = Environment.ProcessorCount;
    /// <summary>How long SIGTERM (or <see cref="RewardServer.StopAsync"/>) waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// The reward server of <c>vrft serve-rewards</c>: Kestrel on <see cref="RewardServerOptions.Host"/> with
/// <list type="bullet">
/// <item><c>POST /score</c>, body a JSON array of <c>{"completion", "solution"[, "task"][, "preset"]}</c>: a JSON array, in
/// order, of the objects <c>vrft score</c> writes (<see cref="ScoreCommand.WriteScore"/>, the same code), with
/// <c>"line"</c> the 1-based position in the array, so a batch gives what <c>vrft score</c> gives for the same items as
/// lines; an item that cannot be scored gets <c>{"line": n, "error": ...}</c> and the others are still scored.</item>
/// <item>OpenRLHF's remote reward model (<c>--remote_rm_url http://HOST:PORT/get_reward</c>, or <c>/score</c>): a JSON
/// object <c>{"query": [...], "prompts": [...], "labels": [...]}</c> as OpenRLHF's
/// <c>openrlhf/utils/remote_rm_utils.py</c> posts it (<c>remote_rm_fn_ray</c>, l. 31-32) →
/// <c>{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}</c>, the keys its
/// <c>request_api_wrapper</c> (l. 10-20) returns to the experience maker.</item>
/// <item><c>GET /health</c>: <c>{"status": "ok", ...}</c>.</item>
/// </list>
/// One log line per request: method, path, status, items, errors, milliseconds.
/// </summary>
public sealed class RewardServer : IAsyncDisposable
{
    readonly WebApplication app;
    readonly RewardServerOptions options;
    readonly TextWriter log;
    readonly SemaphoreSlim slots;
    readonly TaskReward[,] rewards;   // [task, preset]: thread-safe, made once

    RewardServer(WebApplication app, RewardServerOptions options, TextWriter log)
    {
        this.app = app;
        this.options = options;
        this.log = TextWriter.Synchronized(log);
        slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        var tasks = Enum.GetValues<VisualTask>();
        var presets = Enum.GetValues<RewardPreset>();
        rewards = new TaskReward[tasks.Length, presets.Length];
        foreach (var t in tasks)
            foreach (var p in presets)
                rewards[(int)t, (int)p] = TaskReward.Create(t, p);
    }

    /// <summary>The bound address, e.g. <c>http://127.0.0.1:8000</c>.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Binds and starts serving; throws <see cref="IOException"/> when the address is taken.</summary>
    public static async Task<RewardServer> StartAsync(RewardServerOptions options, TextWriter log, CancellationToken cancellation = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        // The request log is ours (one line each); the framework's own would add several lines per request.
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            if (options.Host is "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new OptionException("--host", $"'{options.Host}' is not an IP address or localhost");
        });
        var app = builder.Build();
        var server = new RewardServer(app, options, log);
        app.MapGet("/health", server.Health);
        app.MapPost("/score", server.Score);
        app.MapPost("/get_reward", server.Score);
        try { await app.StartAsync(cancellation); }
        catch (IOException e) { throw new IOException($"cannot listen on {options.Host}:{options.Port}: {e.Message}", e); }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Address = new Uri(address.Replace("[::]", "localhost"));
        return server;
    }

    /// <summary>Serves until SIGTERM, SIGINT or <paramref name="cancellation"/>; requests in flight are finished
    /// (within <see cref="RewardServerOptions.ShutdownTimeout"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellation = default) => app.WaitForShutdownAsync(cancellation);

    public Task StopAsync() => app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await app.DisposeAsync();
        slots.Dispose();
    }

    Task Health(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["status"] = "ok",
            ["task"] = EnumNames.Of(options.Task),
            ["preset"] = PresetName(options.Preset),
            ["tasks"] = EnumNames.All<VisualTask>(),
            ["presets"] = EnumNames.All<RewardPreset>(),
            ["max_batch"] = options.MaxBatch,
            ["max_body_bytes"] = options.MaxBodyBytes,
        });
        Log(context, 200, 0, 0, Stopwatch.GetTimestamp());
        return context.Response.Body.WriteAsync(body).AsTask();
    }

    // Messages quote input: keep quotes and < > readable, as vrft score does.
    static readonly JsonSerializerOptions ErrorJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    async Task Score(HttpContext context)
    {
        long started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(options.RequestTimeout);
        int items = 0, errors = 0, status = 200;
        byte[]? answer = null;
        string? problem = null;
        try
        {
            var body = await ReadBody(context.Request, timeout.Token);
            if (!await slots.WaitAsync(options.RequestTimeout - Stopwatch.GetElapsedTime(started), timeout.Token))
                throw new TimeoutException();
            try { (answer, items, errors) = Answer(body, timeout.Token); }
            finally { slots.Release(); }
        }
        catch (RequestException e) { (status, problem) = (e.Status, e.Message); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) { (status, problem) = (e.StatusCode, e.Message); }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !context.RequestAborted.IsCancellationRequested))
        {
            (status, problem) = (503, $"not scored within the request timeout of {options.RequestTimeout.TotalSeconds:0.###} s (--timeout); retry or send smaller batches");
        }
        catch (OperationCanceledException) { Log(context, 499, items, errors, started); return; }   // the client left
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        if (problem is not null)
        {
            if (status == 503) context.Response.Headers.RetryAfter = "1";
            answer = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["error"] = problem }, ErrorJson);
        }
        context.Response.ContentLength = answer!.Length;
        Log(context, status, items, errors, started, problem);
        await context.Response.Body.WriteAsync(answer, context.RequestAborted);
    }

    /// <summary>An answer other than 200, with the one-line reason sent back as <c>{"error": ...}</c>.</summary>
    sealed class RequestException(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    static async Task<string> ReadBody(HttpRequest request, CancellationToken cancellation)
    {
        // Kestrel refuses a body over MaxRequestBodySize (413) while it is read, so the buffer is bounded too.
        var buffer = new MemoryStream(request.ContentLength is long n and > 0 and < int.MaxValue ? (int)n : 4096);
        await request.Body.CopyToAsync(buffer, cancellation);
        try { return StrictUtf8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length); }
        catch (DecoderFallbackException e) { throw new RequestException(400, $"the body is not valid UTF-8 (invalid byte at offset {e.Index})"); }
    }

    /// <summary>The response body for a request body, and how many items it scored and refused.</summary>
    (byte[] Body, int Items, int Errors) Answer(string body, CancellationToken cancellation)
    {
        // Python's json.loads semantics, as vrft score reads its lines (NaN accepted, lone surrogates kept).
        if (!PyJson.TryLoads(body, out var root, out var error)) throw new RequestException(400, $"invalid JSON: {error}");
        var output = new ArrayBufferWriter<byte>(Math.Max(256, body.Length / 2));
        using var json = new Utf8JsonWriter(output, ScoreCommand.WriterOptions);
        int items, errors = 0;
        if (root.Kind == PyKind.List)
        {
            items = CheckBatch(root.Items.Count);
            json.WriteStartArray();
            for (int i = 0; i < items; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var item = root.Items[i];
                if (ScoreCommand.TryPair(item, out var completion, out var solution, out error) && TryReward(item, out var reward, out error))
                    ScoreCommand.WriteScore(json, i + 1, reward, completion, solution);
                else
                {
                    ScoreCommand.WriteError(json, i + 1, error);
                    errors++;
                }
            }
            json.WriteEndArray();
        }
        else if (root.Kind == PyKind.Dict && root.TryGet("query", out _)) items = OpenRlhf(root, json, cancellation);
        else throw new RequestException(400, $"expected a JSON array of {{\"completion\", \"solution\"}} objects or OpenRLHF's {{\"query\", \"prompts\", \"labels\"}}, got {root.TypeName}");
        json.Flush();
        return (output.WrittenSpan.ToArray(), items, errors);
    }

    int CheckBatch(int count) => count <= options.MaxBatch ? count
        : throw new RequestException(413, $"{count:N0} items in one request; at most {options.MaxBatch:N0} (--max-batch)");

    bool TryReward(PyValue item, out TaskReward reward, out string error)
    {
        var task = options.Task;
        var preset = options.Preset;
        reward = null!;
        error = "";
        if (item.TryGet("task", out var t))
        {
            if (!ScoreCommand.TryString(item, "task", out var name, out error)) return false;
            if (!EnumNames.TryParse(name, out task)) { error = EnumNames.Unknown<VisualTask>(t.Preview(40), "\"task\""); return false; }
        }
        if (item.TryGet("preset", out var p))
        {
            if (!ScoreCommand.TryString(item, "preset", out var name, out error)) return false;
            if (!EnumNames.TryParse(name, out preset)) { error = EnumNames.Unknown<RewardPreset>(p.Preview(40), "\"preset\""); return false; }
        }
        reward = rewards[(int)task, (int)preset];
        return true;
    }

    /// <summary>
    /// OpenRLHF's request: <c>query[i]</c> is the whole sequence decoded with <c>skip_special_tokens=False</c> (its
    /// experience maker, <c>openrlhf/trainer/ppo_utils/experience_maker.py</c>), i.e. the templated prompt, the response
    /// and the end-of-turn / padding tokens; <c>prompts[i]</c> the templated prompt; <c>labels[i]</c> the dataset's
    /// <c>--label_key</c> column, here the solution. The response is the query after its prompt, without the trailing
    /// Qwen2-VL special tokens: the official code scores completions decoded with <c>skip_special_tokens=True</c>, and
    /// its format reward matches the whole string, which a trailing <c>&lt;|im_end|&gt;</c> would fail. OpenRLHF turns the
    /// answer into a tensor, so an item that cannot be used fails the request (400 naming it) instead of a made-up reward;
    /// a NaN total (visual-rft, a NaN confidence, as in the official code) is written as Python's <c>NaN</c>.
    /// </summary>
    int OpenRlhf(PyValue root, Utf8JsonWriter json, CancellationToken cancellation)
    {
        var queries = Strings(root, "query", required: true)!;
        int n = CheckBatch(queries.Count);
        var prompts = Strings(root, "prompts", required: false);
        var labels = Strings(root, "labels", required: true)!;
        if (labels.Count != n || (prompts is not null && prompts.Count != n))
            throw new RequestException(400, $"\"query\" has {n} items but \"labels\" {labels.Count}{(prompts is null ? "" : $" and \"prompts\" {prompts.Count}")}; they are paired");
        var reward = rewards[(int)options.Task, (int)options.Preset];
        var results = new RewardBreakdown[n];
        for (int i = 0; i < n; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            results[i] = reward.Score(OpenRlhfResponse(queries[i], prompts?[i]), labels[i]);
        }
        json.WriteStartObject();
        foreach (var key in new[] { "rewards", "scores" })
        {
            json.WriteStartArray(key);
            foreach (var r in results) WritePythonNumber(json, r.Total);
            json.WriteEndArray();
        }
        json.WriteStartObject("extra_logs");
        for (int c = 0; c < reward.Components.Count; c++)
        {
            json.WriteStartArray(reward.Components[c].Name);
            foreach (var r in results) WritePythonNumber(json, r.Components[c].Value);
            json.WriteEndArray();
        }
        json.WriteEndObject();
        json.WriteEndObject();
        return n;
    }

    static readonly string[] QwenEndTokens = ["<|im_end|>", "<|endoftext|>"];

    internal static string OpenRlhfResponse(string query, string? prompt)
    {
        var response = prompt is not null && query.StartsWith(prompt, StringComparison.Ordinal) ? query[prompt.Length..] : query;
        for (bool cut = true; cut;)
        {
            cut = false;
            foreach (var token in QwenEndTokens)
                if (response.EndsWith(token, StringComparison.Ordinal)) { response = response[..^token.Length]; cut = true; }
        }
        return response;
    }

    static List<string>? Strings(PyValue root, string key, bool required)
    {
        if (!root.TryGet(key, out var v) || v.Kind == PyKind.None)
            return required ? throw new RequestException(400, $"missing \"{key}\"") : null;
        if (v.Kind != PyKind.List) throw new RequestException(400, $"\"{key}\" must be a list of strings, got {v.TypeName}");
        var strings = new List<string>(v.Items.Count);
        for (int i = 0; i < v.Items.Count; i++)
            strings.Add(v.Items[i].Kind == PyKind.Str ? v.Items[i].Str
                : throw new RequestException(400, $"\"{key}\"[{i}] must be a string, got {v.Items[i].TypeName} {v.Items[i].Preview(40)}"));
        return strings;
    }

    static void WritePythonNumber(Utf8JsonWriter json, double v)
    {
        if (double.IsFinite(v)) json.WriteNumberValue(v);
        else json.WriteRawValue(double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity", skipInputValidation: true);
    }

    static string PresetName(RewardPreset preset) => EnumNames.Of(preset);

    void Log(HttpContext context, int status, int items, int errors, long started, string? problem = null) =>
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {context.Connection.RemoteIpAddress} {context.Request.Method} {context.Request.Path} {status} items={items} errors={errors} ms={Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.###}{(problem is null ? "" : " " + problem)}"));
}
