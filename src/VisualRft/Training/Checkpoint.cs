using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using VisualRft.Grpo;
using VisualRft.IO;
using static TorchSharp.torch;

namespace VisualRft.Training;

/// <summary>What a checkpoint folder holds, read from its <c>trainer_state.json</c>.</summary>
public sealed record CheckpointInfo(string Folder, int Step, int TotalSteps, GrpoOptions Options, DateTime CreatedUtc);

/// <summary>
/// Resumable training checkpoints. A checkpoint is a folder <c>checkpoint-000042</c> under a run folder with
/// <list type="bullet">
/// <item><c>model.safetensors</c>: the model's state_dict under its Hugging Face names;</item>
/// <item><c>optimizer.bin</c>: the AdamW state in TorchSharp's format (it round-trips exactly);</item>
/// <item><c>rng.safetensors</c>: the <c>torch.Generator</c> state (U8) and the <see cref="TrainingRandom"/> words;</item>
/// <item><c>trainer_state.json</c>: format, step, total steps, options, file sizes — written last.</item>
/// </list>
/// It is written into a hidden temporary folder that is renamed into place only when complete, then the run folder's
/// <c>latest</c> file is replaced atomically (<see cref="AtomicFile"/>). A crash at any point therefore leaves the
/// previous checkpoint and a <c>latest</c> that names a complete folder; stale temporary folders are removed by the
/// next save. Randomness outside the given generator and <see cref="TrainingRandom"/> (torch's global generator) is
/// not captured: training code must draw through those two.
/// </summary>
public static class Checkpoint
{
    public const int FormatVersion = 1;
    public const string LatestFile = "latest";
    const string WeightsFile = "model.safetensors", OptimizerFile = "optimizer.bin", RngFile = "rng.safetensors", StateFile = "trainer_state.json";
    const string TempTag = ".tmp-", OldTag = ".old-";

    public static string FolderName(int step) => $"checkpoint-{step:D6}";

    /// <summary>Saves the state after <see cref="PolicyOptimizer.StepCount"/> steps into <paramref name="runFolder"/>; returns the checkpoint folder.</summary>
    public static string Save(string runFolder, nn.Module model, PolicyOptimizer optimizer, GrpoOptions options,
        TrainingRandom? random = null, Generator? generator = null) =>
        Save(runFolder, model, optimizer, options, random, generator, onFileWritten: null);

    /// <summary>As the public overload; <paramref name="onFileWritten"/> is a test hook called after each file of the
    /// temporary folder is written (crash injection).</summary>
    internal static string Save(string runFolder, nn.Module model, PolicyOptimizer optimizer, GrpoOptions options,
        TrainingRandom? random, Generator? generator, Action<string>? onFileWritten)
    {
        if (optimizer.PendingMicroBatches != 0)
            throw new InvalidOperationException($"cannot checkpoint in the middle of a step: {optimizer.PendingMicroBatches} micro-batches are accumulated");
        options.Validate();
        Directory.CreateDirectory(runFolder);
        RemoveStale(runFolder);
        var step = optimizer.StepCount;
        var name = FolderName(step);
        var final = Path.Combine(runFolder, name);
        var tmp = Path.Combine(runFolder, $".{name}{TempTag}{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            using (var scope = NewDisposeScope())
                SafeTensors.Save(Path.Combine(tmp, WeightsFile), model.state_dict());
            onFileWritten?.Invoke(WeightsFile);

            WriteFile(Path.Combine(tmp, OptimizerFile), optimizer.SaveState);
            onFileWritten?.Invoke(OptimizerFile);

            var rng = new Dictionary<string, Tensor>();
            var meta = new Dictionary<string, string>();
            using var genState = generator?.get_state();
            if (genState is not null) rng["torch_generator"] = genState;
            if (random is not null) meta["training_random"] = string.Join(",", random.GetState().Select(w => w.ToString("x16")));
            SafeTensors.Save(Path.Combine(tmp, RngFile), rng, meta);
            onFileWritten?.Invoke(RngFile);

            var files = new JsonObject();
            foreach (var f in new[] { WeightsFile, OptimizerFile, RngFile }) files[f] = new FileInfo(Path.Combine(tmp, f)).Length;
            var state = new JsonObject
            {
                ["format"] = FormatVersion,
                ["step"] = step,
                ["total_steps"] = optimizer.TotalSteps,
                ["created_utc"] = DateTime.UtcNow.ToString("O"),
                ["files"] = files,
                ["options"] = JsonNode.Parse(options.ToJson()),
            };
            WriteFile(Path.Combine(tmp, StateFile), s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(state.ToJsonString(new JsonSerializerOptions { WriteIndented = true })); });
            onFileWritten?.Invoke(StateFile);

            // rename(2) of a directory is atomic on one file system; an existing folder of the same step is swapped out first.
            if (Directory.Exists(final))
            {
                var old = Path.Combine(runFolder, $".{name}{OldTag}{Guid.NewGuid():N}");
                Directory.Move(final, old);
                Directory.Move(tmp, final);
                Directory.Delete(old, recursive: true);
            }
            else Directory.Move(tmp, final);
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
        AtomicFile.WriteAllText(Path.Combine(runFolder, LatestFile), name + "\n");
        return final;
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
            var name = File.ReadAllText(latest).Trim();
            if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.StartsWith('.'))
                throw new InvalidDataException($"{latest}: names '{name}', which is not a checkpoint folder name");
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
    public static CheckpointInfo ReadInfo(string path)
    {
        var folder = Resolve(path);
        var statePath = Path.Combine(folder, StateFile);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(statePath)) ?? throw new InvalidDataException($"{statePath}: empty"); }
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
        var options = GrpoOptions.FromJson(root["options"]?.ToJsonString() ?? throw new InvalidDataException($"{statePath}: missing 'options'"), statePath);
        var created = DateTime.Parse(Get<string>("created_utc"), null, System.Globalization.DateTimeStyles.RoundtripKind);
        return new CheckpointInfo(folder, Get<int>("step"), Get<int>("total_steps"), options, created);
    }

    /// <summary>
    /// Restores model weights, optimizer state and step, and (when given) the generator and <see cref="TrainingRandom"/>
    /// from <paramref name="path"/> (a checkpoint folder or a run folder). The optimizer must cover the same
    /// parameters and the same total steps. Everything is validated before the model is touched where possible.
    /// </summary>
    public static CheckpointInfo Load(string path, nn.Module model, PolicyOptimizer optimizer, TrainingRandom? random = null, Generator? generator = null)
    {
        var info = ReadInfo(path);
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

    /// <summary>Removes temporary/swapped-out folders left by a crashed save.</summary>
    static void RemoveStale(string runFolder)
    {
        foreach (var d in Directory.GetDirectories(runFolder, ".checkpoint-*"))
            if (Path.GetFileName(d).Contains(TempTag) || Path.GetFileName(d).Contains(OldTag))
                try { Directory.Delete(d, recursive: true); } catch (IOException) { }
    }
}
