using System.Globalization;
using System.Text.Json;
using Parquet;
using Parquet.Schema;
using VisualRft.Data;
using VisualRft.Rewards;

namespace VisualRft.Interop;

/// <summary>The rollout logs <see cref="Rollouts.Import"/> reads.</summary>
public enum RolloutFormat { Verl, Trl, EasyR1, Wandb }

/// <summary>
/// One completion as an engine logged it: the step, the prompt text, the completion, the ground truth (when logged), the
/// engine's score and any other numeric columns (its reward components, TRL's advantage), and an id when one was logged.
/// </summary>
public sealed record LoggedRollout(int Step, string Prompt, string Completion, string? GroundTruth, double? EngineScore,
    IReadOnlyDictionary<string, double> EngineValues, string? Id);

/// <summary>A run's logged completions (<see cref="Rollouts.Import"/>), and its logged metrics per step where the engine
/// keeps them apart (EasyR1's experiment_log.jsonl, flattened to "a/b" keys).</summary>
public sealed record LoggedRun(string Source, RolloutFormat Format, IReadOnlyList<LoggedRollout> Rollouts,
    IReadOnlyList<(int Step, IReadOnlyDictionary<string, double> Values)> Metrics)
{
    public string Name => Path.GetFileName(Source.TrimEnd('/', '\\'));
}

/// <summary>A logged completion rejoined with its sample and scored by our reward beside the engine's score;
/// <c>Agrees</c>: our total equals the engine's score within 1e-6 (null when the engine logged none).</summary>
public sealed record RescoredRollout(LoggedRollout Logged, VisualSample Sample, RewardBreakdown Ours, bool? Agrees);

/// <summary>A run rejoined with a data set: the rescored completions, and those that matched no sample (with why).</summary>
public sealed record RescoredRun(LoggedRun Run, TaskReward Reward, IReadOnlyList<RescoredRollout> Rollouts,
    IReadOnlyList<(LoggedRollout Rollout, string Why)> Unmatched)
{
    /// <summary>Completions where the engine's score and ours differ.</summary>
    public IReadOnlyList<RescoredRollout> Disagreements => [.. Rollouts.Where(r => r.Agrees == false)];
}

/// <summary>
/// Reads the rollout logs of runs on other engines, field for field as each engine writes them:
/// <list type="bullet">
/// <item>verl: <c>{trainer.rollout_data_dir}/{step}.jsonl</c>, one object per completion with <c>input</c>, <c>output</c>,
/// <c>gts</c>, <c>score</c>, <c>step</c> and every key of the reward's extra info (verl/trainer/ppo/ray_trainer.py,
/// <c>_dump_generations</c>).</item>
/// <item>TRL: <c>{output_dir}/completions/completions_{step:05d}.parquet</c> with <c>step</c>, <c>prompt</c>,
/// <c>completion</c>, one column per reward function and <c>advantage</c> where the version logs them
/// (trl/trainer/grpo_trainer.py, <c>log</c>).</item>
/// <item>EasyR1: <c>generations.log</c>, blocks of <c>[prompt] …\n[output] …\n[ground_truth] …\n[score] …\n\n</c> appended at
/// each validation without the step (verl/utils/logger/gen_logger.py, <c>FileGenerationLogger</c>), so the k-th block of
/// a prompt and ground truth is given step k (the k-th validation); and <c>experiment_log.jsonl</c>, one metrics object per step.</item>
/// <item>W&amp;B tables: <c>media/table/*.table.json</c>, <c>{"columns": [...], "data": [[...]]}</c>, either a row per
/// completion (prompt/input, completion/output, score/reward, step) or verl's and EasyR1's validation table, a row per
/// step with <c>input_i</c>, <c>output_i</c>, <c>label_i</c>/<c>gts_i</c>, <c>score_i</c>.</item>
/// </list>
/// Errors name the file and the field.
/// </summary>
public static class Rollouts
{
    /// <summary>Reads a run: a folder or file of <paramref name="format"/>.</summary>
    public static LoggedRun Import(string path, RolloutFormat format)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"no rollout log at {path}", path);
        var rows = new List<LoggedRollout>();
        var metrics = new List<(int, IReadOnlyDictionary<string, double>)>();
        switch (format)
        {
            case RolloutFormat.Verl:
                foreach (var f in Files(path, "*.jsonl", "verl's {step}.jsonl rollout files")) rows.AddRange(ReadVerl(f));
                break;
            case RolloutFormat.Trl:
                foreach (var f in Files(path, "completions_*.parquet", "TRL's completions/completions_{step:05d}.parquet")) rows.AddRange(ReadTrl(f));
                break;
            case RolloutFormat.EasyR1:
                var log = File.Exists(path) ? path : Path.Combine(path, "generations.log");
                if (!File.Exists(log)) throw new FileNotFoundException($"{path}: no generations.log (EasyR1 writes it into trainer.save_checkpoint_path)", log);
                rows.AddRange(ReadEasyR1(log));
                var experiment = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(log))!, "experiment_log.jsonl");
                if (File.Exists(experiment)) metrics.AddRange(ReadMetrics(experiment));
                break;
            default:
                foreach (var f in Files(path, "*.table.json", "W&B tables (media/table/*.table.json)")) rows.AddRange(ReadWandb(f));
                break;
        }
        return new LoggedRun(Path.GetFullPath(path), format, rows, metrics);
    }

    static IReadOnlyList<string> Files(string path, string pattern, string what)
    {
        if (File.Exists(path)) return [path];
        var files = Directory.GetFiles(path, pattern, SearchOption.AllDirectories).OrderBy(StepOf).ThenBy(f => f, StringComparer.Ordinal).ToList();
        return files.Count > 0 ? files : throw new FileNotFoundException($"{path}: no {what}");
    }

    /// <summary>The step number in a file name (verl's 12.jsonl, TRL's completions_00012.parquet), for ordering.</summary>
    static long StepOf(string file)
    {
        var digits = new string(Path.GetFileNameWithoutExtension(file).Where(char.IsAsciiDigit).ToArray());
        return digits.Length is > 0 and < 18 ? long.Parse(digits, CultureInfo.InvariantCulture) : long.MaxValue;
    }

    static IEnumerable<LoggedRollout> ReadVerl(string file)
    {
        int line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            using var doc = Parse(text, $"{file}:{line}");
            var o = doc.RootElement;
            var values = Numbers(o, "step", "score");
            yield return new LoggedRollout(
                o.TryGetProperty("step", out var s) && s.TryGetInt32(out var step) ? step : (int)Math.Min(StepOf(file), int.MaxValue),
                Text(o, "input", file, line), Text(o, "output", file, line),
                o.TryGetProperty("gts", out var g) ? AsText(g) : null,
                o.TryGetProperty("score", out var sc) && sc.ValueKind == JsonValueKind.Number ? sc.GetDouble() : null,
                values, IdOf(o));
        }
    }

    static IEnumerable<LoggedRollout> ReadTrl(string file)
    {
        using var stream = File.OpenRead(file);
        var reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        try
        {
            var fields = reader.Schema.GetDataFields();
            DataField Field(string name) => fields.FirstOrDefault(f => f.Path.ToString() == name)
                ?? throw new InvalidDataException($"{file}: no column '{name}' (columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))})");
            DataField prompt = Field("prompt"), completion = Field("completion");
            var step = fields.FirstOrDefault(f => f.Name == "step");
            var numeric = fields.Where(f => f != step && (f.ClrType == typeof(double) || f.ClrType == typeof(float))).ToList();
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                int n = checked((int)rg.RowCount);
                var prompts = new string?[n];
                var completions = new string?[n];
                rg.ReadAsync(prompt, prompts.AsMemory()).GetAwaiter().GetResult();
                rg.ReadAsync(completion, completions.AsMemory()).GetAwaiter().GetResult();
                var steps = new long[n];
                if (step is not null) ReadNumbers(rg, step, n).Select(v => (long)v).ToArray().CopyTo(steps, 0);
                else Array.Fill(steps, StepOf(file));
                var columns = numeric.ToDictionary(f => f.Name, f => ReadNumbers(rg, f, n));
                // TRL sums the reward functions (weights 1 unless reward_weights says otherwise) into the reward it trains on
                var rewardNames = columns.Keys.Where(k => k != "advantage").ToList();
                for (int i = 0; i < n; i++)
                    yield return new LoggedRollout((int)steps[i],
                        prompts[i] ?? throw new InvalidDataException($"{file}: row {i} has no prompt"),
                        completions[i] ?? throw new InvalidDataException($"{file}: row {i} has no completion"), null,
                        rewardNames.Count == 0 ? null : rewardNames.Sum(k => columns[k][i]),
                        columns.ToDictionary(c => c.Key, c => c.Value[i]), null);
            }
        }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    static double[] ReadNumbers(ParquetRowGroupReader rg, DataField field, int n)
    {
        var t = Nullable.GetUnderlyingType(field.ClrType) ?? field.ClrType;
        double[] Read<T>(Func<T, double> f) where T : struct
        {
            if (field.IsNullable)
            {
                var a = new T?[n];
                rg.ReadAsync(field, a.AsMemory()).GetAwaiter().GetResult();
                return [.. a.Select(v => v is { } x ? f(x) : double.NaN)];
            }
            var b = new T[n];
            rg.ReadAsync(field, b.AsMemory()).GetAwaiter().GetResult();
            return [.. b.Select(f)];
        }
        return t == typeof(double) ? Read<double>(v => v) : t == typeof(float) ? Read<float>(v => v)
            : t == typeof(long) ? Read<long>(v => v) : t == typeof(int) ? Read<int>(v => v)
            : throw new InvalidDataException($"column '{field.Name}' is {t.Name}, not a number");
    }

    static readonly string[] EasyR1Markers = ["[prompt] ", "[output] ", "[ground_truth] ", "[score] "];

    static IEnumerable<LoggedRollout> ReadEasyR1(string file)
    {
        var text = File.ReadAllText(file).Replace("\r\n", "\n");
        var seen = new Dictionary<string, int>();
        int at = 0, block = 0;
        while (true)
        {
            at = text.IndexOf(EasyR1Markers[0], at, StringComparison.Ordinal);
            if (at < 0) yield break;
            block++;
            var parts = new string[4];
            int pos = at;
            for (int k = 0; k < 4; k++)
            {
                int start = pos + EasyR1Markers[k].Length;
                int end = k < 3 ? text.IndexOf("\n" + EasyR1Markers[k + 1], start, StringComparison.Ordinal) : text.IndexOf('\n', start);
                if (end < 0 && k < 3) throw new InvalidDataException($"{file}: block {block} has no '{EasyR1Markers[k + 1].Trim()}' line after '{EasyR1Markers[k].Trim()}'");
                if (end < 0) end = text.Length;
                parts[k] = text[start..end];
                pos = end + 1;
            }
            at = pos;
            var key = parts[0] + "\n" + parts[2];   // prompts repeat across samples (a detection prompt names the category only)
            int step = seen[key] = seen.GetValueOrDefault(key) + 1;
            double? score = double.TryParse(parts[3].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
            yield return new LoggedRollout(step, parts[0], parts[1], parts[2], score, new Dictionary<string, double>(), null);
        }
    }

    static IEnumerable<(int, IReadOnlyDictionary<string, double>)> ReadMetrics(string file)
    {
        int line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            using var doc = Parse(text, $"{file}:{line}");
            var values = new Dictionary<string, double>();
            Flatten(doc.RootElement, "", values);
            if (values.Remove("step", out var step)) yield return ((int)step, values);
        }
    }

    static void Flatten(JsonElement e, string prefix, Dictionary<string, double> into)
    {
        if (e.ValueKind == JsonValueKind.Number) into[prefix] = e.GetDouble();
        else if (e.ValueKind == JsonValueKind.Object)
            foreach (var p in e.EnumerateObject()) Flatten(p.Value, prefix.Length == 0 ? p.Name : prefix + "/" + p.Name, into);
    }

    static IEnumerable<LoggedRollout> ReadWandb(string file)
    {
        using var doc = Parse(File.ReadAllText(file), file);
        var root = doc.RootElement;
        if (!root.TryGetProperty("columns", out var c) || c.ValueKind != JsonValueKind.Array || !root.TryGetProperty("data", out var d) || d.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{file}: a W&B table needs \"columns\" and \"data\" arrays");
        var columns = c.EnumerateArray().Select(x => x.GetString() ?? "").ToList();
        int Col(params string[] names) => names.Select(n => columns.IndexOf(n)).FirstOrDefault(i => i >= 0, -1);
        int step = Col("step"), prompt = Col("prompt", "input"), completion = Col("completion", "output"), truth = Col("solution", "gts", "label", "ground_truth");
        int score = Col("score", "reward");
        var rows = d.EnumerateArray().ToList();
        var result = new List<LoggedRollout>();
        if (prompt >= 0 && completion >= 0)
        {
            var numeric = columns.Select((n, i) => (n, i)).Where(x => x.i != step && x.i != score && rows.All(r => r[x.i].ValueKind == JsonValueKind.Number)).ToList();
            foreach (var r in rows)
                result.Add(new LoggedRollout(step >= 0 && r[step].TryGetInt32(out var s) ? s : 0, AsText(r[prompt]) ?? "", AsText(r[completion]) ?? "",
                    truth >= 0 ? AsText(r[truth]) : null, score >= 0 && r[score].ValueKind == JsonValueKind.Number ? r[score].GetDouble()
                        : numeric.Count > 0 && columns.Contains("advantage") ? numeric.Where(x => x.n != "advantage").Sum(x => r[x.i].GetDouble()) : null,
                    numeric.ToDictionary(x => x.n, x => r[x.i].GetDouble()), null));
            return result;
        }
        // the validation table of verl and EasyR1: one row per step, input_i / output_i / label_i or gts_i / score_i
        for (int k = 1; columns.Contains($"input_{k}"); k++)
        {
            int i = columns.IndexOf($"input_{k}"), o = columns.IndexOf($"output_{k}"), s = columns.IndexOf($"score_{k}");
            int g = Math.Max(columns.IndexOf($"label_{k}"), columns.IndexOf($"gts_{k}"));
            if (o < 0) throw new InvalidDataException($"{file}: column input_{k} without output_{k}");
            foreach (var r in rows)
                result.Add(new LoggedRollout(step >= 0 && r[step].TryGetInt32(out var st) ? st : 0, AsText(r[i]) ?? "", AsText(r[o]) ?? "",
                    g >= 0 ? AsText(r[g]) : null, s >= 0 && r[s].ValueKind == JsonValueKind.Number ? r[s].GetDouble() : null, new Dictionary<string, double>(), null));
        }
        return result.Count > 0 ? result
            : throw new InvalidDataException($"{file}: no prompt/completion (or input/output) columns nor input_1/output_1 (columns: {string.Join(", ", columns)})");
    }

    static JsonDocument Parse(string text, string where)
    {
        try { return JsonDocument.Parse(text); }
        catch (JsonException e) { throw new InvalidDataException($"{where}: invalid JSON ({e.Message})"); }
    }

    static string Text(JsonElement o, string key, string file, int line) =>
        o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw new InvalidDataException($"{file}:{line}: \"{key}\" must be a string");

    static string? AsText(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => e.GetRawText(),
    };

    static Dictionary<string, double> Numbers(JsonElement o, params string[] except)
    {
        var values = new Dictionary<string, double>();
        foreach (var p in o.EnumerateObject())
            if (p.Value.ValueKind == JsonValueKind.Number && !except.Contains(p.Name)) values[p.Name] = p.Value.GetDouble();
        return values;
    }

    static string? IdOf(JsonElement o)
    {
        foreach (var key in new[] { "uid", "id", "index" })
            if (o.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.String or JsonValueKind.Number) return AsText(v);
        if (o.TryGetProperty("extra_info", out var e) && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("id", out var id)) return AsText(id);
        return null;
    }

    /// <summary>
    /// Rejoins every logged completion with its sample and scores it with the reward of the sample's
    /// task under <paramref name="preset"/>. A completion is matched by, in order: a logged id equal to a sample id; its
    /// ground truth (the solution, or our exports' <c>{"solution", "image_size"}</c>) equal to exactly one sample's
    /// solution; its prompt holding exactly one sample's problem text. Otherwise it is listed as unmatched with why.
    /// </summary>
    public static RescoredRun Rescore(LoggedRun run, IReadOnlyList<VisualSample> samples, RewardPreset preset = RewardPreset.VisualRft)
    {
        var byId = samples.GroupBy(s => s.Id).ToDictionary(g => g.Key, g => g.First());
        var bySolution = samples.GroupBy(s => s.Solution).ToDictionary(g => g.Key, g => g.ToList());
        var byProblem = samples.GroupBy(s => s.Problem).Select(g => (Problem: g.Key, Samples: g.ToList())).OrderByDescending(g => g.Problem.Length).ToList();
        var rewards = new Dictionary<VisualTask, TaskReward>();
        var matched = new List<RescoredRollout>();
        var unmatched = new List<(LoggedRollout, string)>();
        foreach (var r in run.Rollouts)
        {
            VisualSample? sample = null;
            string why = "";
            if (r.Id is { } id && byId.TryGetValue(id, out var s)) sample = s;
            else if (SolutionOf(r.GroundTruth) is { } solution && bySolution.TryGetValue(solution, out var same))
            {
                if (same.Count == 1) sample = same[0];
                else why = $"{same.Count} samples share its solution";
            }
            if (sample is null)
            {
                var holding = byProblem.Where(g => r.Prompt.Contains(g.Problem, StringComparison.Ordinal)).ToList();
                if (holding.Count == 1 && holding[0].Samples.Count == 1) sample = holding[0].Samples[0];
                else why = (why.Length > 0 ? why + "; " : "") + (holding.Count == 0 ? "no sample's problem is in its prompt"
                    : $"{holding.Sum(h => h.Samples.Count)} samples have the problem in its prompt, and no id or ground truth tells them apart");
            }
            if (sample is null) { unmatched.Add((r, why)); continue; }
            if (!rewards.TryGetValue(sample.Task, out var reward)) rewards[sample.Task] = reward = TaskReward.Create(sample.Task, preset);
            var ours = reward.Score(r.Completion, sample.Solution);
            bool? agrees = r.EngineScore is { } e ? Same(e, ours.Total) : null;
            matched.Add(new RescoredRollout(r, sample, ours, agrees));
        }
        var main = rewards.Count == 0 ? TaskReward.Create(samples.Count > 0 ? samples[0].Task : VisualTask.Detection, preset)
            : rewards.Values.First();
        return new RescoredRun(run, main, matched, unmatched);
    }

    static bool Same(double engine, double ours) =>
        (double.IsNaN(engine) && double.IsNaN(ours)) || engine == ours || Math.Abs(engine - ours) <= 1e-6 * Math.Max(1, Math.Abs(ours));

    /// <summary>The solution inside a logged ground truth: our exports' JSON <c>{"solution": ...}</c>, or the text itself.</summary>
    public static string? SolutionOf(string? groundTruth)
    {
        if (groundTruth is null || !groundTruth.TrimStart().StartsWith('{')) return groundTruth;
        try
        {
            using var doc = JsonDocument.Parse(groundTruth);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("solution", out var s) && s.ValueKind == JsonValueKind.String
                ? s.GetString() : groundTruth;
        }
        catch (JsonException) { return groundTruth; }
    }
}
