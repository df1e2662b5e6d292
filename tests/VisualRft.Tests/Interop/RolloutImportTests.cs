using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using VisualRft.Cli;
using VisualRft.Data;
using VisualRft.Interop;
using VisualRft.Rewards;
using VisualRft.Views;

namespace VisualRft.Tests.Interop;

/// <summary>
/// <c>Rollouts.Import</c> / <c>vrft rollouts</c> on logs the tests write field for field as each engine writes them
/// (each writer cites the engine's code): every completion rejoined with its sample, re-scored, drawn with its boxes, and
/// the completions where the engine's score differs from ours listed.
/// </summary>
public class RolloutImportTests
{
    static readonly JsonSerializerOptions PythonJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };   // json.dumps(..., ensure_ascii=False)

    static SyntheticDataset Detection => SyntheticDatasets.Load("shapes-detection", shots: 1);

    /// <summary>G completions of a sample: its boxes shifted by j, a low confidence, and one without the format.</summary>
    static List<string> Completions(VisualSample s, int g, int step)
    {
        var list = new List<string>();
        for (int j = 0; j < g; j++)
        {
            if (j == g - 1) { list.Add($"the boxes are {string.Join(" ", s.Boxes1000)}"); continue; }
            var boxes = string.Join(", ", s.Boxes1000.Select(b => string.Create(CultureInfo.InvariantCulture,
                $"{{'Position': [{b.X1 + j * step}, {b.Y1}, {b.X2 + j * step}, {b.Y2}], 'Confidence': {0.9 - 0.1 * j}}}")));
            list.Add($"<think>step {step}, try {j}</think><answer>[{boxes}]</answer>");
        }
        return list;
    }

    /// <summary>verl's prompt as _dump_generations decodes it (skip_special_tokens=True drops the chat markers' tokens).</summary>
    static string VerlInput(VisualSample s) => $"system\nYou are a helpful assistant.\nuser\n{s.Problem}\nassistant\n";

    static string Folder(string what) => Directory.CreateTempSubdirectory($"vrft-rollouts-{what}-").FullName;

    /// <summary>verl/trainer/ppo/ray_trainer.py, _dump_generations: {step}.jsonl, one json.dumps(entry, ensure_ascii=False)
    /// line per completion, keys input, output, gts, score, step, then the reward's extra info (compute_score's dict,
    /// "score" included, so that key keeps its place). Returns the (step, sample, index) whose logged score is planted wrong.</summary>
    static (int Step, string Sample, int Index) WriteVerl(string dir, IReadOnlyList<VisualSample> samples)
    {
        var reward = TaskReward.Create(VisualTask.Detection);
        var planted = (2, samples[1].Id, 1);
        for (int step = 1; step <= 3; step++)
        {
            var lines = new List<string>();
            foreach (var s in samples)
            {
                var completions = Completions(s, 4, step);
                for (int j = 0; j < completions.Count; j++)
                {
                    var r = reward.Score(completions[j], s.Solution);
                    double score = (step, s.Id, j) == planted ? r.Total + 0.5 : r.Total;   // an engine whose reward differs here
                    var entry = new Dictionary<string, object> { ["input"] = VerlInput(s), ["output"] = completions[j], ["gts"] = EngineExport.GroundTruth(s), ["score"] = score, ["step"] = step };
                    foreach (var c in r.Components) entry[c.Name] = c.Value;
                    lines.Add(JsonSerializer.Serialize(entry, PythonJson));
                }
            }
            File.WriteAllText(Path.Combine(dir, $"{step}.jsonl"), string.Join("\n", lines) + "\n");
        }
        return planted;
    }

    [Fact]
    public void Verl_rollouts_are_rejoined_rescored_and_the_disagreement_listed()
    {
        var dir = Folder("verl");
        try
        {
            var samples = Detection.Train.Take(3).ToList();
            var planted = WriteVerl(dir, samples);
            var run = Rollouts.Import(dir, RolloutFormat.Verl);
            Assert.Equal(3 * 3 * 4, run.Rollouts.Count);
            Assert.Equal([1, 2, 3], run.Rollouts.Select(r => r.Step).Distinct());
            Assert.Equal(["confidence", "format", "iou"], run.Rollouts[0].EngineValues.Keys.Order());
            var rescored = Rollouts.Rescore(run, Detection.Train);
            Assert.Empty(rescored.Unmatched);
            Assert.Equal(run.Rollouts.Count, rescored.Rollouts.Count);
            var d = Assert.Single(rescored.Disagreements);
            Assert.Equal((planted.Step, planted.Sample), (d.Logged.Step, d.Sample.Id));
            Assert.Equal(d.Ours.Total + 0.5, d.Logged.EngineScore!.Value, 12);
            Assert.All(rescored.Rollouts, r => Assert.Equal(r.Logged.EngineValues["iou"], r.Ours["iou"]));

            var view = ImportViews.Run(rescored);
            Assert.Equal(9, Count(view.Html, "<h4>step "));                      // every (step, prompt) group drawn
            Assert.True(Count(view.Html, "vrft-prediction") >= 3 * 3 * 3, "a box per formatted completion");
            Assert.Contains("1 disagree", view.Html);
            Assert.Contains("rewards of " + samples[0].Id, view.Html);           // the prompt followed across steps
        }
        finally { Directory.Delete(dir, true); }
    }

    static int Count(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>TRL's logged table (trl/trainer/grpo_trainer.py, log): step, prompt, completion, a column per reward
    /// function (its __name__), advantage; pandas' to_parquet writes int64 and double.</summary>
    public sealed class TrlCompletion
    {
        [JsonPropertyName("step")] public long Step { get; set; }
        [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
        [JsonPropertyName("completion")] public string Completion { get; set; } = "";
        [JsonPropertyName("visualrft_detection_iou")] public double Iou { get; set; }
        [JsonPropertyName("visualrft_detection_confidence")] public double Confidence { get; set; }
        [JsonPropertyName("visualrft_detection_format")] public double Format { get; set; }
        [JsonPropertyName("advantage")] public double Advantage { get; set; }
    }

    static List<TrlCompletion> TrlRows(IReadOnlyList<VisualSample> samples, int step)
    {
        var reward = TaskReward.Create(VisualTask.Detection);
        return [.. samples.SelectMany(s => Completions(s, 4, step).Select(c =>
        {
            var r = reward.Score(c, s.Solution);
            // the prompt as TRL logs it: the chat template applied to the conversational prompt
            return new TrlCompletion { Step = step, Prompt = $"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{s.Problem}<|im_end|>\n<|im_start|>assistant\n",
                Completion = c, Iou = r["iou"], Confidence = r["confidence"], Format = r["format"], Advantage = 0.25 };
        }))];
    }

    [Fact]
    public async Task TRL_completion_parquet_files_and_their_WandB_table_are_rejoined_by_prompt()
    {
        var dir = Folder("trl");
        try
        {
            var samples = Detection.Train.Take(2).ToList();
            Directory.CreateDirectory(Path.Combine(dir, "completions"));
            foreach (int step in new[] { 1, 2 })
                await ParquetSerializer.SerializeAsync(TrlRows(samples, step), Path.Combine(dir, "completions", $"completions_{step:00000}.parquet"));
            var run = Rollouts.Import(dir, RolloutFormat.Trl);
            Assert.Equal(16, run.Rollouts.Count);
            var rescored = Rollouts.Rescore(run, Detection.Train);
            Assert.Empty(rescored.Unmatched);
            Assert.Empty(rescored.Disagreements);
            Assert.All(rescored.Rollouts, r => Assert.True(r.Agrees));
            Assert.Equal(0.25, ImportViews.Rows(rescored).First().Advantage);

            // the same table as TRL hands it to W&B (logging_backend.Table(dataframe=df)): media/table/*.table.json
            var table = Path.Combine(dir, "media", "table");
            Directory.CreateDirectory(table);
            var rows = TrlRows(samples, 3);
            File.WriteAllText(Path.Combine(table, "completions_3_abc.table.json"), JsonSerializer.Serialize(new
            {
                columns = new[] { "step", "prompt", "completion", "visualrft_detection_iou", "visualrft_detection_confidence", "visualrft_detection_format", "advantage" },
                data = rows.Select(r => new object[] { r.Step, r.Prompt, r.Completion, r.Iou, r.Confidence, r.Format, r.Advantage }),
            }));
            var wandb = Rollouts.Rescore(Rollouts.Import(table, RolloutFormat.Wandb), Detection.Train);
            Assert.Equal(8, wandb.Rollouts.Count);
            Assert.All(wandb.Rollouts, r => Assert.True(r.Agrees));
            var both = ImportViews.Run(rescored, wandb);
            Assert.Contains("two runs", both.Html);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void EasyR1_generations_log_and_experiment_log_through_the_command()
    {
        var dir = Folder("easyr1");
        var outDir = Folder("easyr1-out");
        try
        {
            var samples = Detection.Test.Take(3).ToList();
            var reward = TaskReward.Create(VisualTask.Detection);
            // verl/utils/logger/gen_logger.py (EasyR1), FileGenerationLogger: appended at each validation, no step
            using (var log = new StreamWriter(Path.Combine(dir, "generations.log")))
                for (int step = 1; step <= 2; step++)
                    foreach (var s in samples)
                    {
                        var c = Completions(s, 2, step)[0];
                        var score = reward.Score(c, s.Solution).Total;
                        log.Write($"[prompt] system\nYou are a helpful assistant.\nuser\n{s.Problem}\nassistant\n\n[output] {c}\n[ground_truth] {EngineExport.GroundTruth(s)}\n[score] {score.ToString("R", CultureInfo.InvariantCulture)}\n\n");
                    }
            File.WriteAllText(Path.Combine(dir, "experiment_log.jsonl"),
                "{\"step\": 1, \"reward\": {\"overall\": 1.5, \"iou\": 0.4}, \"actor\": {\"lr\": 1e-06}}\n{\"step\": 2, \"reward\": {\"overall\": 1.7, \"iou\": 0.5}}\n");
            var (o, e) = (new StringWriter(), new StringWriter());
            int code = VrftCommandLine.Run(["rollouts", dir, "--format", "easyr1", "--dataset", "shapes-detection", "--shots", "1", "--out", outDir],
                new System.CommandLine.InvocationConfiguration { Output = o, Error = e });
            Assert.True(code == 0, e.ToString());
            Assert.Contains("6 completions, 6 rejoined with shapes-detection, 0 unmatched; engine and ours disagree on 0 of 6", o.ToString());
            var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
            Assert.StartsWith("<!DOCTYPE html>", html);
            Assert.Contains("reward/overall", html);                              // the engine's own metrics
            Assert.DoesNotContain("<script src=", html);                          // opens offline
            var lines = File.ReadAllLines(Path.Combine(outDir, "rescored.jsonl"));
            Assert.Equal(6, lines.Length);
            Assert.Equal([1, 1, 1, 2, 2, 2], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32()));
        }
        finally
        {
            Directory.Delete(dir, true);
            Directory.Delete(outDir, true);
        }
    }

    [Fact]
    public void The_validation_table_of_verl_and_EasyR1_in_WandB_is_one_row_per_step()
    {
        var dir = Folder("wandb-wide");
        try
        {
            var data = SyntheticDatasets.Load("shapes-grounding", shots: 2, testSize: 4);
            var samples = data.Test.Take(2).ToList();
            var reward = TaskReward.Create(VisualTask.Grounding);
            // verl/utils/logger/gen_logger.py (EasyR1), WandbGenerationLogger: columns step, input_i, output_i, label_i, score_i
            var columns = new List<string> { "step" };
            for (int i = 1; i <= samples.Count; i++) columns.AddRange([$"input_{i}", $"output_{i}", $"label_{i}", $"score_{i}"]);
            var rows = new List<object[]>();
            for (int step = 1; step <= 2; step++)
            {
                var row = new List<object> { step };
                foreach (var s in samples)
                {
                    var b = s.Boxes1000[0];
                    var c = $"<think>t</think><answer>({b.X1 + step},{b.Y1}),({b.X2},{b.Y2})</answer>";
                    row.AddRange([$"user\n{s.Problem}\nassistant\n", c, EngineExport.GroundTruth(s), reward.Score(c, s.Solution).Total]);
                }
                rows.Add([.. row]);
            }
            File.WriteAllText(Path.Combine(dir, "val_generations_2_x.table.json"), JsonSerializer.Serialize(new { columns, data = rows }));
            var run = Rollouts.Rescore(Rollouts.Import(dir, RolloutFormat.Wandb), data.Test);
            Assert.Equal(4, run.Rollouts.Count);
            Assert.Empty(run.Unmatched);
            Assert.All(run.Rollouts, r => Assert.True(r.Agrees));
            Assert.Equal([1, 1, 2, 2], run.Rollouts.Select(r => r.Logged.Step).Order());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_missing_or_malformed_log_fails_with_the_file_named()
    {
        var dir = Folder("bad");
        try
        {
            Assert.Contains("no verl's {step}.jsonl", Assert.Throws<FileNotFoundException>(() => Rollouts.Import(dir, RolloutFormat.Verl)).Message);
            File.WriteAllText(Path.Combine(dir, "1.jsonl"), "{\"input\": \"p\", \"output\": 3}\n");
            var bad = Assert.Throws<InvalidDataException>(() => Rollouts.Import(dir, RolloutFormat.Verl));
            Assert.Contains("1.jsonl:1: \"output\" must be a string", bad.Message);
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(2, VrftCommandLine.Run(["rollouts", dir, "--format", "verl", "--dataset", "shapes-detection", "--out", dir],
                new System.CommandLine.InvocationConfiguration { Output = o, Error = e }));
            Assert.Contains("\"output\" must be a string", e.ToString());
        }
        finally { Directory.Delete(dir, true); }
    }
}
