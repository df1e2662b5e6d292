using System.Text;
using System.Text.Json;
using VisualRft.Data;
using VisualRft.Evaluation;
using Xunit.Abstractions;

namespace VisualRft.Tests.Evaluation;

/// <summary>
/// COCO and LVIS evaluation against the reference tools: detection-cases.json holds random problems scored by
/// pycocotools' COCOeval and by the LVIS API (make_detection_cases.py beside this file lists the rules they exercise).
/// </summary>
public class DetectionParityTests(ITestOutputHelper output)
{
    static readonly List<JsonElement> Cases = Load();

    static List<JsonElement> Load()
    {
        var path = Path.Combine(Golden.RepoRoot, "tests", "VisualRft.Tests", "Evaluation", "detection-cases.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    static CocoDataset Gt(JsonElement c) => CocoDataset.Parse(new MemoryStream(Encoding.UTF8.GetBytes(c.GetProperty("gt").GetRawText())), "case.gt");
    static IReadOnlyList<CocoDetection> Dt(JsonElement c) => CocoDataset.ParseResults(new MemoryStream(Encoding.UTF8.GetBytes(c.GetProperty("dt").GetRawText())), "case.dt");

    static double Diff(JsonElement want, double mine) =>
        want.ValueKind == JsonValueKind.Null ? (double.IsNaN(mine) ? 0 : double.PositiveInfinity) : Math.Abs(want.GetDouble() - mine);

    static double ComparePerCategory(JsonElement c, DetectionEvaluation e, bool allAreas)
    {
        double worst = 0;
        foreach (var p in c.GetProperty("perCategory").EnumerateObject())
        {
            var mine = e.PerCategory.Single(x => x.CategoryId == long.Parse(p.Name));
            worst = Math.Max(worst, Diff(p.Value.GetProperty("ap"), mine.Ap));
            worst = Math.Max(worst, Diff(p.Value.GetProperty("ap50"), mine.Ap50));
            worst = Math.Max(worst, Diff(p.Value.GetProperty("ap75"), mine.Ap75));
            if (allAreas) worst = Math.Max(worst, Diff(p.Value.GetProperty("apAllAreas"), mine.ApAllAreas));
        }
        return worst;
    }

    [Fact]
    public void COCO_stats_and_per_category_AP_equal_pycocotools()
    {
        double worst = 0;
        int n = 0;
        foreach (var c in Cases.Where(c => c.GetProperty("kind").GetString() == "coco"))
        {
            var cats = c.GetProperty("catIds") is { ValueKind: JsonValueKind.Array } ids ? ids.EnumerateArray().Select(i => i.GetInt64()).ToList() : null;
            var e = CocoEvaluator.Evaluate(Gt(c), Dt(c), cats);
            var want = c.GetProperty("stats").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(12, e.Stats.Count);
            for (int i = 0; i < 12; i++) worst = Math.Max(worst, Math.Abs(want[i] - e.Stats[i]));
            worst = Math.Max(worst, ComparePerCategory(c, e, allAreas: false));
            n++;
        }
        output.WriteLine($"{n} COCO cases, max |Δ| = {worst:E2}");
        Assert.True(n >= 100, $"only {n} COCO cases");
        Assert.True(worst <= 1e-9, $"max |Δ| vs pycocotools = {worst}");
    }

    [Fact]
    public void LVIS_results_and_per_category_AP_equal_the_LVIS_API()
    {
        double worst = 0;
        int n = 0;
        foreach (var c in Cases.Where(c => c.GetProperty("kind").GetString() == "lvis"))
        {
            var e = LvisEvaluator.Evaluate(Gt(c), Dt(c), maxDets: c.GetProperty("maxDets").GetInt32());
            var want = c.GetProperty("results").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(want.Length, e.Results.Count);
            for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(want[i] - e[i]));
            worst = Math.Max(worst, ComparePerCategory(c, e, allAreas: true));
            n++;
        }
        output.WriteLine($"{n} LVIS cases, max |Δ| = {worst:E2}");
        Assert.True(n >= 60, $"only {n} LVIS cases");
        Assert.True(worst <= 1e-9, $"max |Δ| vs the LVIS API = {worst}");
    }
}
