using System.CommandLine;
using System.Text.Json;
using VisualRft.Cli;

namespace VisualRft.Tests.Cli;

public class EvalCommandTests
{
    static (int Code, string Out) Run(params string[] args)
    {
        var output = new StringWriter();
        var root = new RootCommand { EvalCommand.Create() };
        int code = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = output, EnableDefaultExceptionHandler = false });
        return (code, output.ToString());
    }

    static JsonElement FirstCase(string kind)
    {
        var path = Path.Combine(Golden.RepoRoot, "tests", "VisualRft.Tests", "Evaluation", "detection-cases.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().First(c => c.GetProperty("kind").GetString() == kind && c.GetProperty(kind == "coco" ? "catIds" : "maxDets").ValueKind != JsonValueKind.Array).Clone();
    }

    [Theory]
    [InlineData("coco")]
    [InlineData("lvis")]
    public void Writes_the_reference_tools_summary_and_per_category_AP(string kind)
    {
        var c = FirstCase(kind);
        var dir = Directory.CreateTempSubdirectory("vrft-eval-");
        try
        {
            string gt = Path.Combine(dir.FullName, "gt.json"), dt = Path.Combine(dir.FullName, "dt.json"), outFile = Path.Combine(dir.FullName, "out.json");
            File.WriteAllText(gt, c.GetProperty("gt").GetRawText());
            File.WriteAllText(dt, c.GetProperty("dt").GetRawText());
            var args = new List<string> { "eval", kind, "--gt", gt, "--dt", dt, "--out", outFile };
            if (kind == "lvis") args.AddRange(["--max-dets", c.GetProperty("maxDets").GetInt32().ToString()]);
            var (code, text) = Run([.. args]);
            Assert.True(code == 0, text);
            using var report = JsonDocument.Parse(File.ReadAllText(outFile));
            var stats = report.RootElement.GetProperty("stats");
            var want = c.GetProperty(kind == "coco" ? "stats" : "results").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var got = kind == "coco" ? stats.EnumerateArray().Select(x => x.GetDouble()).ToArray() : stats.EnumerateObject().Select(p => p.Value.GetDouble()).ToArray();
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 9);
            foreach (var p in c.GetProperty("perCategory").EnumerateObject())
            {
                var mine = report.RootElement.GetProperty("perCategory").EnumerateArray().Single(x => x.GetProperty("id").GetInt64() == long.Parse(p.Name));
                var ap = p.Value.GetProperty("ap");
                if (ap.ValueKind == JsonValueKind.Null) Assert.Equal(JsonValueKind.Null, mine.GetProperty("AP").ValueKind);
                else Assert.Equal(ap.GetDouble(), mine.GetProperty("AP").GetDouble(), 9);
            }
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Category_subset_and_bad_input_are_reported_with_file_and_key()
    {
        var dir = Directory.CreateTempSubdirectory("vrft-eval-");
        try
        {
            string gt = Path.Combine(dir.FullName, "gt.json"), dt = Path.Combine(dir.FullName, "dt.json");
            File.WriteAllText(gt, """{"images":[{"id":1,"width":100,"height":100}],"categories":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,50,50],"area":2500,"iscrowd":0}]}""");
            File.WriteAllText(dt, """[{"image_id":1,"category_id":1,"bbox":[0,0,50,50],"score":0.9}]""");
            var (code, text) = Run("eval", "coco", "--gt", gt, "--dt", dt, "--cat-ids", "1");
            Assert.Equal(0, code);
            using (var report = JsonDocument.Parse(text))
            {
                Assert.Single(report.RootElement.GetProperty("perCategory").EnumerateArray());
                Assert.Equal(100 * (1 - Math.Pow(2, -52)), report.RootElement.GetProperty("mAP").GetDouble(), 9);
            }
            Assert.Contains("--cat-ids", Assert.Throws<OptionException>(() => Run("eval", "coco", "--gt", gt, "--dt", dt, "--cat-ids", "7")).Message);
            File.WriteAllText(dt, """[{"image_id":1,"category_id":1,"bbox":[0,0,50],"score":0.9}]""");
            var e = Assert.Throws<InvalidDataException>(() => Run("eval", "coco", "--gt", gt, "--dt", dt));
            Assert.Contains(dt, e.Message);
            Assert.Contains("[0].bbox", e.Message);
        }
        finally { dir.Delete(true); }
    }
}
