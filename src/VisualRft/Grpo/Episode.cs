using System.Text.Json;
using System.Text.Json.Serialization;

namespace VisualRft.Grpo;

/// <summary>
/// One trainer step as a notebook keeps it (nano-aha-moment's per-step episodes): every scored completion with its
/// advantage, what the update did, and the step's metrics. Plain data.
/// </summary>
/// <param name="Step">Trainer steps done after this one (1-based).</param>
/// <param name="Batches">The step's micro-batches: rollouts, rewards and advantages.</param>
/// <param name="Update">What the policy update did (loss, KL, gradient norm, per-token log-probs).</param>
/// <param name="Metrics">The step's summary, as TRL logs it.</param>
public sealed record Episode(int Step, IReadOnlyList<AdvantageBatch> Batches, UpdateResult Update, StepMetrics Metrics)
{
    /// <summary>One row per completion, in rollout order: the unit that <see cref="EpisodeLog"/> writes.</summary>
    public IEnumerable<EpisodeRow> Rows => Batches.SelectMany(b => b.Rollout.Completions.Select((c, i) =>
    {
        var r = b.Scored.Rewards[i];
        return new EpisodeRow(Step, b.Rollout.Samples[c.Prompt].Id, c.Index, c.Text, c.Tokens, c.Finished, r.Total,
            r.Components.ToDictionary(x => x.Name, x => x.Value), r.Failure?.ToString(), b.Advantages[i]);
    }));
}

/// <summary>One completion of one step, flat: what a JSON line of <c>episodes.jsonl</c> holds per completion, and what a
/// view follows across steps for one prompt.</summary>
public sealed record EpisodeRow(int Step, string SampleId, int Index, string Text, int Tokens, bool Finished, double Reward,
    IReadOnlyDictionary<string, double> Components, string? Failure, float Advantage);

/// <summary>
/// <c>episodes.jsonl</c> in a run folder: one line per step, <c>{"step", "metrics", "completions": [EpisodeRow…]}</c>, so that
/// a prompt's completions can be followed across steps (here, with jq, or pandas).
/// </summary>
public static class EpisodeLog
{
    public const string FileName = "episodes.jsonl";

    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    sealed record Line(int Step, StepMetrics Metrics, IReadOnlyList<EpisodeRow> Completions);

    /// <summary>Appends the episode as one line (the file is flushed, so a crash loses at most the line being written).</summary>
    public static void Append(string runFolder, Episode episode)
    {
        Directory.CreateDirectory(runFolder);
        var line = JsonSerializer.Serialize(new Line(episode.Step, episode.Metrics, [.. episode.Rows]), Json);
        using var file = new FileStream(Path.Combine(runFolder, FileName), FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(file);
        writer.WriteLine(line);
    }

    /// <summary>Every completion row of a log, step by step; a torn last line (a crash mid-write) is skipped.</summary>
    public static IReadOnlyList<EpisodeRow> Read(string path)
    {
        var rows = new List<EpisodeRow>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            try { rows.AddRange(JsonSerializer.Deserialize<Line>(lines[i], Json)!.Completions); }
            catch (JsonException) when (i == lines.Length - 1) { }   // torn by a crash while being written
            catch (JsonException e) { throw new InvalidDataException($"{path}: line {i + 1} is not an episode: {e.Message}", e); }
        }
        return rows;
    }
}
