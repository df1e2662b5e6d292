using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using VisualRft.IO;
using static TorchSharp.torch;

namespace VisualRft.Training;

/// <summary>
/// A trainer's options as a checkpoint records them: validated before a save, written as JSON into
/// <c>trainer_state.json</c> and read back (validated again) before a load touches the model. The trainer's options
/// type implements it, so that checkpoints need not know which trainer wrote them.
/// </summary>
public interface ICheckpointOptions<TSelf> where TSelf : ICheckpointOptions<TSelf>
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid knob.</summary>
    TSelf Validate();
    string ToJson();
    /// <summary>Parses <see cref="ToJson"/>'s output; bad JSON or values are <see cref="InvalidDataException"/>s naming <paramref name="source"/>.</summary>
    static abstract TSelf FromJson(string json, string source);
}

/// <summary>What a checkpoint folder holds, read from its <c>trainer_state.json</c>.</summary>
public sealed record CheckpointInfo<TOptions>(string Folder, int Step, int TotalSteps, TOptions Options, DateTime CreatedUtc);

/// <summary>Which checkpoints of a run are kept: the newest <see cref="KeepLast"/> by step and, with
/// <see cref="KeepBest"/>, the one with the best recorded metric (the <c>metric</c> of <c>Checkpoint.Save</c>); the one
/// <c>latest</c> names is always kept.</summary>
public sealed record CheckpointRetention(int KeepLast, bool KeepBest = true, bool HigherIsBetter = true)
{
    public void Validate()
    {
        if (KeepLast < 1) throw new ArgumentOutOfRangeException(nameof(KeepLast), KeepLast, "a run keeps at least its last checkpoint");
    }
}

/// <summary>
/// Resumable training checkpoints. A checkpoint is a folder <c>checkpoint-000042</c> under a run folder with
/// <list type="bullet">
/// <item><c>model.safetensors</c>: the model's state_dict under its Hugging Face names;</item>
/// <item><c>optimizer.bin</c>: the AdamW state in TorchSharp's format (it round-trips exactly), then a half-precision model's float32 master weights;</item>
/// <item><c>rng.safetensors</c>: the <c>torch.Generator</c> state (U8) and the <see cref="TrainingRandom"/> words;</item>
/// <item><c>trainer_state.json</c>: format, step, total steps, options, metric, file sizes — written last.</item>
/// </list>
/// </summary>
/// <remarks>
/// <para><b>Crash safety.</b> The run folder's <c>latest</c> file always names a complete checkpoint, whatever
/// file-system operation a kill interrupts (tested by stopping a save before each of its operations): a checkpoint
/// is written into a hidden temporary folder and renamed into place only when complete; the folder <c>latest</c>
/// names is never renamed or deleted while <c>latest</c> names it — re-saving the same step writes the other of two
/// names (<c>checkpoint-000042</c>, <c>checkpoint-000042-b</c>), switches <c>latest</c> (an atomic file replace), and
/// only then removes the old copy; folders are deleted by renaming them hidden first, so a half-deleted folder is
/// never visible. Hidden leftovers of a killed save are removed by the next save.</para>
/// <para><b>Retention.</b> Without a <see cref="CheckpointRetention"/> every checkpoint is kept; with one, a save
/// ends by removing the others (<see cref="Prune"/>).</para>
/// <para>Randomness outside the given generator and <see cref="TrainingRandom"/> (torch's global generator) is not
/// captured: training code must draw through those two.</para>
/// </remarks>
public static class Checkpoint
{
    public const int FormatVersion = 1;
    public const string LatestFile = "latest";
    const string WeightsFile = "model.safetensors", OptimizerFile = "optimizer.bin", RngFile = "rng.safetensors", StateFile = "trainer_state.json";
    const string TempTag = ".tmp-", TrashTag = ".trash-", AlternateSuffix = "-b";

    public static string FolderName(int step) => $"checkpoint-{step:D6}";

    /// <summary>
    /// Saves the state after <see cref="PolicyOptimizer.StepCount"/> steps into <paramref name="runFolder"/> and points
    /// <c>latest</c> at it; returns the checkpoint folder. <paramref name="metric"/> (e.g. the mean reward) is recorded
    /// for <see cref="CheckpointRetention.KeepBest"/>; <paramref name="retention"/> removes older checkpoints afterwards.
    /// </summary>
    public static string Save<TOptions>(string runFolder, nn.Module model, PolicyOptimizer optimizer, TOptions options,
        TrainingRandom? random = null, Generator? generator = null, CheckpointRetention? retention = null, double? metric = null)
        where TOptions : ICheckpointOptions<TOptions> =>
        Save(runFolder, model, optimizer, options, random, generator, retention, metric, beforeOperation: null);

    /// <summary>As the public overload; <paramref name="beforeOperation"/> is a test hook called with a description
    /// before every file-system operation, where a kill can happen.</summary>
    internal static string Save<TOptions>(string runFolder, nn.Module model, PolicyOptimizer optimizer, TOptions options,
        TrainingRandom? random, Generator? generator, CheckpointRetention? retention, double? metric, Action<string>? beforeOperation)
        where TOptions : ICheckpointOptions<TOptions>
    {
        if (optimizer.PendingMicroBatches != 0)
            throw new InvalidOperationException($"cannot checkpoint in the middle of a step: {optimizer.PendingMicroBatches} micro-batches are accumulated");
        options.Validate();
        retention?.Validate();
        if (metric is { } m && !double.IsFinite(m)) throw new ArgumentOutOfRangeException(nameof(metric), m, "the metric must be finite");
        var op = beforeOperation ?? (_ => { });
        op("create the run folder");
        Directory.CreateDirectory(runFolder);
        var current = ReadLatest(runFolder);
        if (current is null && CompleteCheckpoints(runFolder) is [.., var newest])
        {
            // A save killed between its rename and `latest` left no `latest`: name the newest checkpoint before anything moves.
            current = Path.GetFileName(newest.Folder);
            WriteLatest(runFolder, current, op);
        }
        RemoveStale(runFolder, op);

        var step = optimizer.StepCount;
        var primary = FolderName(step);
        var name = current == primary ? primary + AlternateSuffix : primary;   // never replace the folder `latest` names
        var final = Path.Combine(runFolder, name);
        var tmp = Path.Combine(runFolder, $".{name}{TempTag}{Guid.NewGuid():N}");
        op("create the temporary folder");
        Directory.CreateDirectory(tmp);
        try
        {
            op("write " + WeightsFile);
            using (var scope = NewDisposeScope())
                SafeTensors.Save(Path.Combine(tmp, WeightsFile), model.state_dict());
            op("write " + OptimizerFile);
            WriteFile(Path.Combine(tmp, OptimizerFile), optimizer.SaveState);

            var rng = new Dictionary<string, Tensor>();
            var meta = new Dictionary<string, string>();
            using var genState = generator?.get_state();
            if (genState is not null) rng["torch_generator"] = genState;
            if (random is not null) meta["training_random"] = string.Join(",", random.GetState().Select(w => w.ToString("x16")));
            op("write " + RngFile);
            SafeTensors.Save(Path.Combine(tmp, RngFile), rng, meta);

            var files = new JsonObject();
            foreach (var f in new[] { WeightsFile, OptimizerFile, RngFile }) files[f] = new FileInfo(Path.Combine(tmp, f)).Length;
            var state = new JsonObject
            {
                ["format"] = FormatVersion,
                ["step"] = step,
                ["total_steps"] = optimizer.TotalSteps,
                ["created_utc"] = DateTime.UtcNow.ToString("O"),
                ["metric"] = metric,
                ["files"] = files,
                ["options"] = JsonNode.Parse(options.ToJson()),
            };
            op("write " + StateFile);
            WriteFile(Path.Combine(tmp, StateFile), s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(state.ToJsonString(new JsonSerializerOptions { WriteIndented = true })); });

            if (Directory.Exists(final)) Discard(runFolder, final, op);   // an older copy that `latest` does not name
            op("rename the temporary folder to " + name);
            Directory.Move(tmp, final);   // rename(2) of a directory is atomic on one file system
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
        WriteLatest(runFolder, name, op);
        // The other copy of this step, if any, is superseded now that `latest` names the new one.
        var other = Path.Combine(runFolder, name == primary ? primary + AlternateSuffix : primary);
        if (Directory.Exists(other)) Discard(runFolder, other, op);
        if (retention is not null) PruneFolders(runFolder, retention, op);
        return final;
    }

    /// <summary>
    /// Removes the checkpoints of <paramref name="runFolder"/> that <paramref name="retention"/> does not keep (the
    /// newest <see cref="CheckpointRetention.KeepLast"/> by step, the best by metric, and the one <c>latest</c> names);
    /// returns the folders removed. Folders that are not complete checkpoints are left alone.
    /// </summary>
    public static IReadOnlyList<string> Prune(string runFolder, CheckpointRetention retention) => PruneFolders(runFolder, retention, _ => { });

    static IReadOnlyList<string> PruneFolders(string runFolder, CheckpointRetention retention, Action<string> op)
    {
        retention.Validate();
        var all = CompleteCheckpoints(runFolder);
        var keep = new HashSet<string>(all.TakeLast(retention.KeepLast).Select(c => c.Folder));
        if (ReadLatest(runFolder) is { } latest) keep.Add(Path.Combine(runFolder, latest));
        var scored = all.Where(c => c.Metric is not null).ToList();
        if (retention.KeepBest && scored.Count > 0)
            keep.Add((retention.HigherIsBetter ? scored.MaxBy(c => c.Metric) : scored.MinBy(c => c.Metric))!.Folder);
        var removed = all.Select(c => c.Folder).Where(f => !keep.Contains(f)).ToList();
        foreach (var f in removed) Discard(runFolder, f, op);
        return removed;
    }

    /// <summary>The complete checkpoint folders of a run (those with a readable trainer_state.json), oldest step first.</summary>
    static List<(string Folder, int Step, double? Metric)> CompleteCheckpoints(string runFolder)
    {
        var result = new List<(string, int, double?)>();
        foreach (var d in Directory.GetDirectories(runFolder, "checkpoint-*"))
        {
            try
            {
                var state = JsonNode.Parse(BoundedFile.ReadAllText(Path.Combine(d, StateFile), 1 << 20, "trainer state"));
                result.Add((d, state!["step"]!.GetValue<int>(), state["metric"]?.GetValue<double>()));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException or NullReferenceException or InvalidOperationException or FormatException) { }   // not a complete checkpoint
        }
        return [.. result.OrderBy(c => c.Item2).ThenBy(c => c.Item1, StringComparer.Ordinal)];
    }

    static string? ReadLatest(string runFolder)
    {
        var path = Path.Combine(runFolder, LatestFile);
        return File.Exists(path) ? BoundedFile.ReadAllText(path, 4096, "latest file").Trim() : null;
    }

    /// <summary>Replaces <c>latest</c> atomically: a hidden temporary file, then a rename over it.</summary>
    static void WriteLatest(string runFolder, string name, Action<string> op)
    {
        var tmp = Path.Combine(runFolder, $".{LatestFile}{TempTag}{Guid.NewGuid():N}");
        op("write the new latest file");
        WriteFile(tmp, s => s.Write(System.Text.Encoding.UTF8.GetBytes(name + "\n")));
        op("rename it over latest");
        File.Move(tmp, Path.Combine(runFolder, LatestFile), overwrite: true);
    }

    /// <summary>Deletes a folder without ever showing it half deleted: a rename to a hidden name, then the delete.</summary>
    static void Discard(string runFolder, string folder, Action<string> op)
    {
        var trash = Path.Combine(runFolder, $".{Path.GetFileName(folder)}{TrashTag}{Guid.NewGuid():N}");
        op("hide " + Path.GetFileName(folder));
        Directory.Move(folder, trash);
        op("delete " + Path.GetFileName(folder));
        Directory.Delete(trash, recursive: true);
    }

    /// <summary>
    /// The checkpoint folder that <paramref name="path"/> designates: itself when it holds <c>trainer_state.json</c>,
    /// else the run folder's <c>latest</c>, else (no <c>latest</c> yet) its highest-numbered complete checkpoint.
    /// </summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"checkpoint or run folder not found: {path}");
        var latest = Path.Combine(path, LatestFile);
        if (File.Exists(latest))
        {
            var name = BoundedFile.ReadAllText(latest, 4096, "latest file").Trim();
            if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.StartsWith('.'))
                throw new InvalidDataException($"{latest}: names '{Excerpt.Of(name, 80)}', which is not a checkpoint folder name");
            var folder = Path.Combine(path, name);
            if (!File.Exists(Path.Combine(folder, StateFile)))
                throw new InvalidDataException($"{latest}: names {name}, but {Path.Combine(folder, StateFile)} does not exist");
            return folder;
        }
        var complete = Directory.GetDirectories(path, "checkpoint-*")
            .Where(d => File.Exists(Path.Combine(d, StateFile)))
            .OrderBy(d => d, StringComparer.Ordinal).LastOrDefault();
        return complete ?? throw new FileNotFoundException($"{path} holds no checkpoint (no '{LatestFile}' file and no complete checkpoint-* folder)", latest);
    }

    /// <summary>Reads and validates a checkpoint's <c>trainer_state.json</c> and file sizes, without loading tensors.</summary>
    public static CheckpointInfo<TOptions> ReadInfo<TOptions>(string path) where TOptions : ICheckpointOptions<TOptions>
    {
        var folder = Resolve(path);
        var statePath = Path.Combine(folder, StateFile);
        JsonNode root;
        try { root = JsonNode.Parse(BoundedFile.ReadAllText(statePath, 1 << 20, "trainer state")) ?? throw new InvalidDataException($"{statePath}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{statePath}: not valid JSON: {e.Message}", e); }
        T Get<T>(string key) where T : notnull
        {
            try { return root[key] is { } n ? n.GetValue<T>() : throw new InvalidDataException($"{statePath}: missing '{key}'"); }
            catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{statePath}: '{key}' is not a {typeof(T).Name}", e); }
        }
        var format = Get<int>("format");
        if (format != FormatVersion) throw new InvalidDataException($"{statePath}: checkpoint format {format}, this version reads {FormatVersion}");
        if (root["files"] is not JsonObject files) throw new InvalidDataException($"{statePath}: missing 'files'");
        foreach (var f in new[] { WeightsFile, OptimizerFile, RngFile })
        {
            var p = Path.Combine(folder, f);
            if (!File.Exists(p)) throw new InvalidDataException($"{folder}: {f} is missing");
            var expected = files[f]?.GetValue<long>() ?? throw new InvalidDataException($"{statePath}: no size recorded for {f}");
            var actual = new FileInfo(p).Length;
            if (actual != expected) throw new InvalidDataException($"{p}: {actual} bytes, but {StateFile} recorded {expected} (truncated or replaced)");
        }
        var options = TOptions.FromJson(root["options"]?.ToJsonString() ?? throw new InvalidDataException($"{statePath}: missing 'options'"), statePath);
        var created = DateTime.Parse(Get<string>("created_utc"), null, System.Globalization.DateTimeStyles.RoundtripKind);
        return new CheckpointInfo<TOptions>(folder, Get<int>("step"), Get<int>("total_steps"), options, created);
    }

    /// <summary>
    /// Restores model weights, optimizer state and step, and (when given) the generator and <see cref="TrainingRandom"/>
    /// from <paramref name="path"/> (a checkpoint folder or a run folder). The optimizer must cover the same
    /// parameters and the same total steps. Everything is validated before the model is touched where possible.
    /// </summary>
    public static CheckpointInfo<TOptions> Load<TOptions>(string path, nn.Module model, PolicyOptimizer optimizer, TrainingRandom? random = null, Generator? generator = null)
        where TOptions : ICheckpointOptions<TOptions>
    {
        var info = ReadInfo<TOptions>(path);
        if (info.TotalSteps != optimizer.TotalSteps)
            throw new InvalidDataException($"{info.Folder}: saved by a run of {info.TotalSteps} optimizer steps, the optimizer was built for {optimizer.TotalSteps}; the linear schedule would differ");

        var rngPath = Path.Combine(info.Folder, RngFile);
        var (_, _, meta) = SafeTensors.ReadHeader(rngPath);
        ulong[]? words = null;
        if (random is not null)
        {
            if (!meta.TryGetValue("training_random", out var text)) throw new InvalidDataException($"{rngPath}: no TrainingRandom state was saved");
            var parts = text.Split(',');
            if (parts.Length != 4 || !parts.All(p => ulong.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out _)))
                throw new InvalidDataException($"{rngPath}: training_random '{text}' is not four hex words");
            words = parts.Select(p => ulong.Parse(p, System.Globalization.NumberStyles.HexNumber)).ToArray();
        }

        using var scope = NewDisposeScope();
        Tensor? genState = null;
        if (generator is not null)
        {
            var rng = SafeTensors.Load(rngPath);
            if (!rng.TryGetValue("torch_generator", out genState)) throw new InvalidDataException($"{rngPath}: no torch_generator state was saved");
        }

        LoadWeights(info.Folder, model);
        using (var fs = File.OpenRead(Path.Combine(info.Folder, OptimizerFile)))
            optimizer.LoadState(fs, info.Step, Path.Combine(info.Folder, OptimizerFile));
        if (words is not null) random!.SetState(words);
        if (genState is not null) generator!.set_state(genState);
        return info;
    }

    /// <summary>Copies the checkpoint's weights into <paramref name="model"/> (names, shapes and dtypes must match exactly).</summary>
    public static void LoadWeights(string path, nn.Module model)
    {
        var file = Path.Combine(Resolve(path), WeightsFile);
        using var scope = NewDisposeScope();
        var source = SafeTensors.Load(file);
        var target = model.state_dict();
        var missing = target.Keys.Except(source.Keys).ToList();
        var unexpected = source.Keys.Except(target.Keys).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{file}: does not fit the model: missing [{string.Join(", ", missing.Take(10))}], unexpected [{string.Join(", ", unexpected.Take(10))}]");
        foreach (var (k, t) in target)
        {
            var s = source[k];
            if (!s.shape.SequenceEqual(t.shape) || s.dtype != t.dtype)
                throw new InvalidDataException($"{file}: '{k}' is {s.dtype}[{string.Join(",", s.shape)}], the model has {t.dtype}[{string.Join(",", t.shape)}]");
        }
        using var _ = no_grad();
        foreach (var (k, t) in target) t.copy_(source[k]);
    }

    static void WriteFile(string path, Action<Stream> write)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        write(fs);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Removes the hidden leftovers of a killed save (temporary and half-deleted folders, a temporary latest).</summary>
    static void RemoveStale(string runFolder, Action<string> op)
    {
        foreach (var d in Directory.GetDirectories(runFolder, ".checkpoint-*"))
            if (Path.GetFileName(d).Contains(TempTag) || Path.GetFileName(d).Contains(TrashTag))
            {
                op("remove the leftover " + Path.GetFileName(d));
                try { Directory.Delete(d, recursive: true); } catch (IOException) { }
            }
        foreach (var f in Directory.GetFiles(runFolder, $".{LatestFile}{TempTag}*"))
        {
            op("remove the leftover " + Path.GetFileName(f));
            File.Delete(f);
        }
    }
}
