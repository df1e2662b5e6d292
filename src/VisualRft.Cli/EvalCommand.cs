using System.CommandLine;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.IO;

namespace VisualRft.Cli;

/// <summary>
/// <c>vrft eval coco|lvis --gt GT.json --dt DT.json [--cat-ids 1,2,3] [--out FILE]</c>: bbox evaluation exactly as
/// pycocotools / the LVIS API compute it (<see cref="CocoEvaluator"/>, <see cref="LvisEvaluator"/>); writes
/// <see cref="DetectionReport"/> JSON to FILE or stdout. With <c>--cat-ids</c> only those categories are evaluated (the
/// tools' <c>params.catIds</c>) and <c>mAP</c> is the paper's mean over them. Bad input throws with the file and key named.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate detections against COCO or LVIS annotations (the paper's detection metrics)");
        cmd.Subcommands.Add(Sub("coco", "COCO bbox AP as pycocotools' COCOeval: 12 summary stats, per-category AP/AP50/AP75", lvis: false));
        cmd.Subcommands.Add(Sub("lvis", "LVIS bbox AP as the LVIS API's LVISEval (federated, max 300 per image): its summary, per-category AP", lvis: true));
        return cmd;
    }

    static Command Sub(string name, string description, bool lvis)
    {
        var gt = new Option<FileInfo>("--gt") { Description = "annotation file (COCO / LVIS JSON)", Required = true };
        var dt = new Option<FileInfo>("--dt") { Description = "results file: JSON list of {image_id, category_id, bbox [x,y,w,h], score}", Required = true };
        var catIds = new Option<string?>("--cat-ids") { Description = "comma-separated category ids to evaluate (default: all)" };
        var output = new Option<FileInfo?>("--out") { Description = "write the JSON here instead of stdout" };
        var maxDets = new Option<int>("--max-dets") { Description = "detections kept per image (LVISResults max_dets)", DefaultValueFactory = _ => LvisEvaluator.DefaultMaxDets };
        var cmd = new Command(name, description) { gt, dt, catIds, output };
        if (lvis) cmd.Options.Add(maxDets);
        cmd.SetAction(parse =>
        {
            // options first, the output file included: an unwritable --out must not wait for the evaluation
            int keep = lvis ? OptionChecks.InRange(parse, maxDets, 1, int.MaxValue) : 0;
            var ids = ParseIds(parse.GetValue(catIds));
            var outFile = parse.GetValue(output) is { } o ? OptionChecks.OutputFile(output.Name, o) : null;
            var truth = CocoDataset.Load(parse.GetValue(gt)!.FullName);
            var detections = CocoDataset.LoadResults(parse.GetValue(dt)!.FullName);
            var unknown = ids?.Where(id => truth.Categories.All(c => c.Id != id)).ToList();
            if (unknown is { Count: > 0 }) throw new OptionException("--cat-ids", $"category id {unknown[0]} is not in {truth.Source}");
            DetectionEvaluation result = lvis
                ? LvisEvaluator.Evaluate(truth, detections, ids, keep)
                : CocoEvaluator.Evaluate(truth, detections, ids);
            var json = DetectionReport.ToJson(result);
            if (outFile is not null)
            {
                AtomicFile.WriteAllText(outFile, json + "\n");
                parse.InvocationConfiguration.Output.WriteLine($"written: {outFile} (mAP {result.PaperMeanAp():F1} over {result.PerCategory.Count} categories)");
            }
            else parse.InvocationConfiguration.Output.WriteLine(json);
            return 0;
        });
        return cmd;
    }

    /// <summary>"1,2, 3" → [1, 2, 3]; null or blank → null (all categories).</summary>
    public static IReadOnlyList<long>? ParseIds(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s, out var id) ? id : throw new OptionException("--cat-ids", $"'{s}' is not an integer category id"))];
    }
}
