using System.Text.Json;
using Parquet;
using Parquet.Serialization;
using SixLabors.ImageSharp;
using VisualRft.Cli;
using VisualRft.Data;
using VisualRft.Interop;

namespace VisualRft.Tests.Interop;

/// <summary><c>vrft export</c>: the parquet columns each engine's recipe reads (verl's examples/data_preprocess/geo3k.py,
/// EasyR1's problem/answer/images, TRL's conversational vision prompt), standard three-level lists as pyarrow writes
/// them, images that decode, ground truths the shims read, and configs with the paper's settings.</summary>
public class EngineExportTests
{
    static string Out(string engine) => Path.Combine(Path.GetTempPath(), $"vrft-export-{engine}-{Guid.NewGuid():N}");

    static List<string> Columns(string file)
    {
        using var stream = File.OpenRead(file);
        var reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        try { return [.. reader.Schema.GetDataFields().Select(f => f.Path.ToString())]; }
        finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    static (int Code, string Out, string Err) Invoke(params string[] args) => Cli.Vrft.Invoke(args);

    [Fact]
    public async Task Verl_rows_hold_the_prompt_image_ground_truth_and_extra_info()
    {
        var dir = Out("verl");
        try
        {
            var (code, output, err) = Invoke("export", "verl", "--dataset", "shapes-detection", "--shots", "1", "--out", dir);
            Assert.True(code == 0, err);
            Assert.Contains("verl: 8 train and", output);
            Assert.Equal(["data_source", "prompt/list/element/role", "prompt/list/element/content", "images/list/element/bytes",
                "images/list/element/path", "ability", "reward_model/style", "reward_model/ground_truth", "extra_info/split",
                "extra_info/index", "extra_info/id", "extra_info/task", "extra_info/preset", "extra_info/image_width", "extra_info/image_height"],
                Columns(Path.Combine(dir, "train.parquet")));
            var rows = (await ParquetSerializer.DeserializeAsync<EngineExport.VerlRow>(Path.Combine(dir, "train.parquet"))).Data;
            var data = SyntheticDatasets.Load("shapes-detection", shots: 1);
            Assert.Equal(data.Train.Count, rows.Count);
            for (int i = 0; i < rows.Count; i++)
            {
                var (row, sample) = (rows[i], data.Train[i]);
                Assert.Equal("visualrft/shapes-detection", row.DataSource);
                Assert.Equal("<image>" + sample.Problem, Assert.Single(row.Prompt).Content);
                using var image = Image.Load(Assert.Single(row.Images).Bytes);
                Assert.Equal((sample.Width, sample.Height), (image.Width, image.Height));
                using var truth = JsonDocument.Parse(row.RewardModel.GroundTruth);
                Assert.Equal(sample.Solution, truth.RootElement.GetProperty("solution").GetString());
                Assert.Equal([sample.Width, sample.Height], truth.RootElement.GetProperty("image_size").EnumerateArray().Select(e => e.GetInt32()));
                Assert.Equal(("detection", "visual-rft", i, sample.Id), (row.ExtraInfo.Task, row.ExtraInfo.Preset, (int)row.ExtraInfo.Index, row.ExtraInfo.Id));
            }
            var config = File.ReadAllText(Path.Combine(dir, "verl-grpo.sh"));
            foreach (var key in new[] { "actor_rollout_ref.rollout.n=8 ", "actor_rollout_ref.actor.kl_loss_coef=0.04 ", "kl_loss_type=low_var_kl ",
                "actor_rollout_ref.actor.optim.lr=1e-6 ", "data.max_response_length=256 ", "rollout.temperature=1.0 ", "loss_agg_mode=seq-mean-token-mean " })
                Assert.Contains(key, config);
            Assert.All(config.Split('\n').Where(l => l.TrimStart().StartsWith("actor_rollout_ref.") || l.TrimStart().StartsWith("algorithm.")),
                l => Assert.Contains("# ", l));   // a comment on every hyper-parameter
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task EasyR1_and_TRL_rows_have_their_engines_columns()
    {
        var dir = Out("easyr1");
        var trl = Out("trl");
        try
        {
            Assert.Equal(0, Invoke("export", "easyr1", "--dataset", "shapes-grounding", "--shots", "2", "--out", dir).Code);
            Assert.Equal(["problem", "answer", "images/list/element/bytes", "images/list/element/path"], Columns(Path.Combine(dir, "test.parquet")));
            var rows = (await ParquetSerializer.DeserializeAsync<EngineExport.EasyR1Row>(Path.Combine(dir, "test.parquet"))).Data;
            var data = SyntheticDatasets.Load("shapes-grounding", shots: 2);
            Assert.Equal(data.Test.Count, rows.Count);
            Assert.Equal(data.Test[3].Solution, JsonDocument.Parse(rows[3].Answer).RootElement.GetProperty("solution").GetString());
            var yaml = File.ReadAllText(Path.Combine(dir, "easyr1-config.yaml"));
            foreach (var key in new[] { "n: 8 ", "kl_coef: 0.04 ", "kl_penalty: low_var_kl ", "lr: 1.0e-6 ", "max_response_length: 256 ", "temperature: 1.0 ",
                "loss_avg_mode: seq ", "reward_function_kwargs: {task: grounding, preset: visual-rft}" })
                Assert.Contains(key, yaml);

            Assert.Equal(0, Invoke("export", "trl", "--dataset", "shapes-classification", "--shots", "1", "--preset", "strict", "--out", trl).Code);
            Assert.Contains("prompt/list/element/content/list/element/type", Columns(Path.Combine(trl, "train.parquet")));
            var trlRows = (await ParquetSerializer.DeserializeAsync<EngineExport.TrlRow>(Path.Combine(trl, "train.parquet"))).Data;
            var content = Assert.Single(trlRows[0].Prompt).Content;
            Assert.Equal(["image", "text"], content.Select(c => c.Type));
            Assert.Equal(trlRows[0].Problem, content[1].Text);
            Assert.Equal(("classification", "strict"), (trlRows[0].ExtraInfo.Task, trlRows[0].ExtraInfo.Preset));
            var grpo = File.ReadAllText(Path.Combine(trl, "trl-grpo.yaml"));
            foreach (var key in new[] { "num_generations: 8 ", "beta: 0.04 ", "learning_rate: 1.0e-6 ", "max_completion_length: 256 ", "temperature: 1.0 ", "loss_type: grpo " })
                Assert.Contains(key, grpo);
        }
        finally
        {
            foreach (var d in new[] { dir, trl }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Fact]
    public void Bad_options_fail_with_one_line()
    {
        var (code, _, err) = Invoke("export", "verl", "--dataset", "imagenet", "--out", Out("x"));
        Assert.Equal(1, code);
        Assert.Contains("no synthetic data set 'imagenet'", err);
        Assert.Equal(1, Invoke("export", "verl", "--dataset", "shapes-detection", "--shots", "0", "--out", Out("x")).Code);
        Assert.Equal(1, Invoke("export", "spark", "--dataset", "shapes-detection", "--out", Out("x")).Code);
    }
}

/// <summary><c>vrft export</c> of a downloaded data set (hub parquet shards): a half-downloaded image stops the export naming
/// the row and file, or, with <c>--on-bad-image skip</c>, is left out and counted in the summary.</summary>
public class DownloadedExportTests : IDisposable
{
    readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("vrft-export-hf-");
    public void Dispose() => dir.Delete(true);

    static byte[] Png()
    {
        using var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(40, 20);
        using var ms = new MemoryStream();
        img.SaveAsPng(ms);
        return ms.ToArray();
    }

    async Task<string> Shard(params (byte[] Image, string Path)[] images)
    {
        var data = Directory.CreateDirectory(Path.Combine(dir.FullName, "coco-4shot", "data"));
        var schema = new Parquet.Schema.ParquetSchema(
            new Parquet.Schema.StructField("image", new Parquet.Schema.DataField<byte[]>("bytes"), new Parquet.Schema.DataField<string>("path")),
            new Parquet.Schema.DataField<string>("problem"), new Parquet.Schema.DataField<string>("solution"));
        var f = schema.GetDataFields();
        await using (var stream = File.Create(Path.Combine(data.FullName, "train-00000-of-00001.parquet")))
        await using (var writer = await ParquetWriter.CreateAsync(schema, stream))
        {
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(f[0], images.Select(i => i.Image).ToArray());
            await rg.WriteAsync(f[1], images.Select(i => i.Path).ToArray());
            await rg.WriteAsync(f[2], images.Select(_ => Prompts.Detection("fire hydrant")).ToArray());
            await rg.WriteAsync(f[3], images.Select(_ => "<answer>[{'Position': [100, 200, 500, 750], 'Confidence': 1}]</answer>").ToArray());
        }
        return data.Parent!.FullName;
    }

    static (int Code, string Out, string Err) Invoke(params string[] args) => Cli.Vrft.Invoke(args);

    [Fact]
    public async Task A_half_downloaded_image_stops_the_export_or_is_skipped_and_counted()
    {
        var whole = Png();
        var set = await Shard((whole, "a.png"), (whole[..(whole.Length / 2)], "half-downloaded.png"), (whole, "c.png"));
        var outDir = Path.Combine(dir.FullName, "out");

        var (code, _, err) = Invoke("export", "verl", "--dataset", set, "--out", outDir);
        Assert.Equal(2, code);
        Assert.StartsWith("vrft export verl: coco-4shot/1: image half-downloaded.png: truncated PNG", err);
        Assert.False(File.Exists(Path.Combine(outDir, "train.parquet")));

        (code, var output, err) = Invoke("export", "verl", "--dataset", set, "--on-bad-image", "skip", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("coco-4shot: 2 samples, 1 skipped for their images (first: coco-4shot/1: image half-downloaded.png", output);
        Assert.Contains("no test split and no --test", output);
        Assert.Contains("verl: 2 train and 2 test rows of coco-4shot", output);
        var rows = (await ParquetSerializer.DeserializeAsync<EngineExport.VerlRow>(Path.Combine(outDir, "train.parquet"))).Data;
        Assert.Equal(["coco-4shot/0", "coco-4shot/2"], rows.Select(r => r.ExtraInfo.Id));

        Assert.Equal(1, Invoke("export", "verl", "--dataset", set, "--shots", "4", "--out", outDir).Code);
        Assert.Equal(1, Invoke("export", "verl", "--dataset", set, "--on-bad-image", "ignore", "--out", outDir).Code);
    }
}
