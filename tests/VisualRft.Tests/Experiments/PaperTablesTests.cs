using VisualRft.Experiments;

namespace VisualRft.Tests.Experiments;

public class PaperTablesTests
{
    [Fact]
    public void Every_row_fits_its_columns()
    {
        Assert.Equal([2, 3, 4, 5, 6, 7, 8], PaperTables.All.Select(t => t.Number));
        foreach (var t in PaperTables.All)
            foreach (var r in t.Rows)
                Assert.True(r.Values.Count == t.Columns.Count, $"Table {t.Number} {r.Model} {r.Setting} {r.Kind}: {r.Values.Count} values for {t.Columns.Count} columns");
        Assert.Equal(16, PaperTables.Table2.Rows.Count);
        Assert.Equal(20, PaperTables.Table3.Rows.Count);
        Assert.Equal(40.6, PaperTables.Table3.RowsOf("Qwen2-VL-2B", "4-shot").Single(r => r.Kind == RowKind.VisualRft).Values[0]);
    }

    [Fact]
    public void The_only_inconsistencies_are_the_spec_notes_three_and_one_delta()
    {
        var found = PaperTables.All.SelectMany(t => t.Inconsistencies()).ToList();
        Assert.True(found.Count == 4, string.Join("\n", found));
        Assert.Contains(found, f => f.StartsWith("Table 4 Qwen2-VL-7B +Visual-RFT: mAP printed 33.8, from the other columns 33.1"));
        Assert.Contains(found, f => f.StartsWith("Table 4 Qwen2-VL-2B  Δ kitchen_table: printed +29.2, Visual-RFT − baseline = +28.8"));
        Assert.Contains(found, f => f.StartsWith("Table 5 Qwen2-VL-2B 16-shot  Δ feline-or-canid: printed +56.4, Visual-RFT − baseline = +31.0"));
        Assert.Contains(found, f => f.StartsWith("Table 8 Qwen2-VL-2B +Visual-RFT: mAP printed 20.7, from the other columns 20.0"));
    }
}

public class PaperScaleTests
{
    [Fact]
    public void Refuses_with_everything_missing_the_hardware_and_the_time()
    {
        var nowhere = Path.Combine(Path.GetTempPath(), "vrft-no-such-folder");
        var e = Assert.Throws<PaperScaleUnavailableException>(() => PaperScale.Check(3, nowhere, nowhere, cudaAvailable: false));
        Assert.Contains("80 GB", e.Message);
        Assert.Contains("200 steps", e.Message);
        Assert.Contains("Qwen/Qwen2-VL-2B-Instruct", e.Message);
        Assert.Contains("vrft download coco-2017-val", e.Message);
        Assert.Contains("vrft download virft-coco-8-cate-4-shot", e.Message);
        Assert.Contains("CUDA device", e.Message);
        Assert.Contains("not released", Assert.Throws<PaperScaleUnavailableException>(() => PaperScale.Check(5, nowhere, nowhere, cudaAvailable: true)).Message);
        foreach (var t in PaperTables.All)
            Assert.All(PaperScale.Requirements(t.Number).Datasets, d => VisualRft.Data.PaperDatasets.Get(d));
    }

    [Fact]
    public void Passes_when_weights_data_and_a_GPU_are_there()
    {
        var root = Directory.CreateTempSubdirectory("vrft-paper-");
        try
        {
            var model = Directory.CreateDirectory(Path.Combine(root.FullName, "model"));
            File.WriteAllText(Path.Combine(model.FullName, "config.json"), VisualRft.Models.Qwen2VL.Qwen2VLConfig.Qwen2VL2B().ToJson().ToJsonString());
            File.WriteAllText(Path.Combine(model.FullName, "model.safetensors"), "");
            foreach (var name in PaperScale.Requirements(3).Datasets)
            {
                var d = Directory.CreateDirectory(Path.Combine(root.FullName, "data", name));
                var ds = VisualRft.Data.PaperDatasets.Get(name);
                if (ds.Files.Count == 0) File.WriteAllText(Path.Combine(d.FullName, "train-00000-of-00001.parquet"), "");
                foreach (var f in ds.Files) File.WriteAllText(Path.Combine(d.FullName, f.Name), "");
            }
            var checkedRun = PaperScale.Check(3, model.FullName, Path.Combine(root.FullName, "data"), cudaAvailable: true);
            Assert.Equal(3, checkedRun.Table);
            Assert.Equal(2_208_985_600, checkedRun.Plan!.Parameters);
            // Without a GPU the refusal also says what the run will hold.
            Assert.Contains("A full-parameter bf16 GRPO run of this model with gradient checkpointing needs about",
                Assert.Throws<PaperScaleUnavailableException>(() => PaperScale.Check(3, model.FullName, Path.Combine(root.FullName, "data"), cudaAvailable: false)).Message);
        }
        finally { root.Delete(true); }
    }
}
