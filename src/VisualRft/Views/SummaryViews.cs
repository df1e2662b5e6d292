using System.Text;
using System.Text.Json.Nodes;
using VisualRft.Grpo;
using VisualRft.Policy;
using static VisualRft.Views.Html;

namespace VisualRft.Views;

/// <summary>Short summaries of the objects that hold tensors — a policy, a trainer — instead of object dumps.</summary>
public static class SummaryViews
{
    public static View Policy(VisionLanguagePolicy p)
    {
        var c = p.Model.Config;
        long parameters = p.Model.parameters().Sum(x => x.numel()), vision = p.Model.named_parameters().Where(x => x.name.Contains("visual")).Sum(x => x.parameter.numel());
        var rows = new (string, string)[]
        {
            ("architecture", $"{(c.IsQwen25 ? "Qwen2.5-VL" : "Qwen2-VL")} ({c.ModelType})"),
            ("parameters", $"{parameters:N0} ({vision:N0} in the vision tower)"),
            ("language model", $"{c.Text.NumHiddenLayers} layers, hidden {c.Text.HiddenSize}, {c.Text.NumAttentionHeads} heads ({c.Text.NumKeyValueHeads} key-value), vocabulary {c.Text.VocabSize:N0}"),
            ("vision tower", $"{c.Vision.Depth} blocks, width {c.Vision.Width}, patch {c.Vision.PatchSize}, merge {c.Vision.SpatialMergeSize}×{c.Vision.SpatialMergeSize}"),
            ("device, dtype", $"{p.Device.type}, {p.Model.DType}"),
            ("tokenizer", $"{p.Processor.Tokenizer.VocabSize:N0} tokens; stops at {string.Join(", ", p.StopTokenIds)}"),
            ("boxes", p.AnswerFrame == Geometry.CoordinateFrame.Normalized1000 ? "answers in the 0–1000 frame" : "answers in resized-image pixels"),
        };
        var html = Table(["", ""], rows.Select(r => new[] { $"<td class=l>{r.Item1}</td>", $"<td class=l>{E(r.Item2)}</td>" }));
        var text = $"{(c.IsQwen25 ? "Qwen2.5-VL" : "Qwen2-VL")} policy, {parameters:N0} parameters, {p.Device.type} {p.Model.DType}";
        return new View(Root($"<h4>policy</h4>{html}", "policy"), EvaluationViews.SvgTable(["policy", ""], rows.Select(r => new[] { r.Item1, r.Item2 })), text);
    }

    public static View Trainer(GrpoTrainer t)
    {
        var changed = Differences(GrpoOptions.VisualRftPaper, t.Options);
        var rows = new List<(string, string)>
        {
            ("progress", $"{t.StepsDone} of {t.TotalSteps} steps ({t.Optimizer.StepCount} optimizer steps), next learning rate {t.Optimizer.NextLearningRate:0.##e0}"),
            ("reward", t.Reward.Name + ": " + string.Join(" + ", t.Reward.Components.Select(c => c.Name))),
            ("training prompts", $"{t.TrainSet.Count}, {t.Options.PromptsPerStep} per step × G {t.Options.NumGenerations}"),
            ("reference", t.Reference is null ? "none (β = 0)" : $"frozen copy of the starting policy, β = {t.Options.Beta}"),
            ("options", changed.Count == 0 ? "the paper's (GrpoOptions.VisualRftPaper)" : "the paper's, except " + string.Join(", ", changed)),
        };
        if (t.History.LastOrDefault() is { } last)
            rows.Add(("last step", $"{last.Step}: reward {N(last.Metrics.Reward.Mean)} ± {N(last.Metrics.Reward.Std)}, {N(last.Metrics.Time.TotalMs, 0)} ms"));
        var html = Table(["", ""], rows.Select(r => new[] { $"<td class=l>{r.Item1}</td>", $"<td class=l>{E(r.Item2)}</td>" }));
        return new View(Root($"<h4>GRPO trainer</h4>{html}", "trainer"), EvaluationViews.SvgTable(["trainer", ""], rows.Select(r => new[] { r.Item1, r.Item2 })),
            $"GrpoTrainer: step {t.StepsDone}/{t.TotalSteps}, {t.Reward.Name}" + (changed.Count == 0 ? "" : $", {string.Join(", ", changed)}"));
    }

    /// <summary>"Name = value" for every option that differs from <paramref name="preset"/>.</summary>
    static List<string> Differences(GrpoOptions preset, GrpoOptions options)
    {
        var a = JsonNode.Parse(preset.ToJson())!.AsObject();
        var b = JsonNode.Parse(options.ToJson())!.AsObject();
        return [.. b.Where(kv => !JsonNode.DeepEquals(kv.Value, a[kv.Key])).Select(kv => $"{kv.Key} = {kv.Value?.ToJsonString().Trim('"')}")];
    }
}
