using Apache.Arrow;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;
using Parquet;
using Parquet.Schema;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using VisualRft.Data;
using Field = Apache.Arrow.Field;
using Schema = Apache.Arrow.Schema;

namespace VisualRft.Tests.Data;

/// <summary>Every supported format of the paper's data, on small files made here.</summary>
public sealed class PaperDataLoaderTests : IDisposable
{
    readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("vrft-data-");
    public void Dispose() => dir.Delete(true);

    static readonly string Problem = VisualRft.Data.Prompts.Detection("fire hydrant");
    const string Solution = "<answer>[{'Position': [100, 200, 500, 750], 'Confidence': 1}, {'Position': [600, 0, 1000, 250], 'Confidence': 1}]</answer>";

    /// <summary>A 40×20 RGBA PNG, as build_dataset.ipynb stores the images; pixel (0,0) red with alpha 128.</summary>
    static byte[] Png()
    {
        using var img = new Image<Rgba32>(40, 20, new Rgba32(0, 0, 255, 255));
        img[0, 0] = new Rgba32(255, 0, 0, 128);
        using var ms = new MemoryStream();
        img.SaveAsPng(ms);
        return ms.ToArray();
    }

    static void CheckDetectionRow(HfRow row)
    {
        Assert.Equal(Problem, row.Problem);
        Assert.Equal(Solution, row.Solution);
        var sample = PaperSamples.FromHfRow(row, VisualTask.Detection, "coco/0");
        Assert.Equal("fire hydrant", sample.Category);
        Assert.Equal((40, 20), (sample.Width, sample.Height));
        // Red at alpha 128 composited on white, as transformers' convert_to_rgb does (PIL's integer arithmetic).
        Assert.Equal((255, 127, 127), (sample.Image[0, 0, 0], sample.Image[0, 0, 1], sample.Image[0, 0, 2]));
        Assert.Equal([new Qwen1000Box(100, 200, 500, 750), new Qwen1000Box(600, 0, 1000, 250)], sample.Boxes1000);
        Assert.Equal([new PixelBox(4, 4, 20, 15), new PixelBox(24, 0, 40, 5)], sample.Boxes);
    }

    [Fact]
    public async Task Parquet_shards_of_the_hub()
    {
        var data = Directory.CreateDirectory(Path.Combine(dir.FullName, "data"));
        var schema = new ParquetSchema(new StructField("image", new DataField<byte[]>("bytes"), new DataField<string>("path")),
            new DataField<string>("problem"), new DataField<string>("solution"));
        var f = schema.GetDataFields();
        for (int shard = 0; shard < 2; shard++)
        {
            await using var stream = File.Create(Path.Combine(data.FullName, $"train-0000{shard}-of-00002.parquet"));
            await using var writer = await ParquetWriter.CreateAsync(schema, stream);
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(f[0], new[] { Png(), Png() });
            await rg.WriteAsync(f[1], new[] { $"img{shard}a.png", $"img{shard}b.png" });
            await rg.WriteAsync(f[2], new[] { Problem, Problem });
            await rg.WriteAsync(f[3], new[] { Solution, Solution });
        }
        var rows = HfDatasetReader.Read(dir.FullName).ToList();
        Assert.Equal(["img0a.png", "img0b.png", "img1a.png", "img1b.png"], rows.Select(r => r.ImagePath));
        CheckDetectionRow(rows[3]);
    }

    [Fact]
    public void Save_to_disk_folder_with_arrow_stream_files()
    {
        var train = Directory.CreateDirectory(Path.Combine(dir.FullName, "train"));
        File.WriteAllText(Path.Combine(dir.FullName, "dataset_dict.json"), """{"splits": ["train"]}""");
        File.WriteAllText(Path.Combine(train.FullName, "state.json"),
            """{"_data_files": [{"filename": "data-00000-of-00002.arrow"}, {"filename": "data-00001-of-00002.arrow"}], "_split": "train"}""");
        var imageType = new StructType([new Field("bytes", BinaryType.Default, true), new Field("path", StringType.Default, true)]);
        var schema = new Schema([new Field("image", imageType, true), new Field("problem", StringType.Default, true), new Field("solution", StringType.Default, true)], null);
        for (int shard = 0; shard < 2; shard++)
        {
            var bytes = new BinaryArray.Builder().Append(Png().AsSpan()).Build();
            var paths = new StringArray.Builder().Append($"img{shard}.png").Build();
            var image = new StructArray(imageType, 1, [bytes, paths], ArrowBuffer.Empty);
            var batch = new RecordBatch(schema, [image, new StringArray.Builder().Append(Problem).Build(), new StringArray.Builder().Append(Solution).Build()], 1);
            using var stream = File.Create(Path.Combine(train.FullName, $"data-0000{shard}-of-00002.arrow"));
            using var writer = new ArrowStreamWriter(stream, schema);
            writer.WriteRecordBatch(batch);
            writer.WriteEnd();
        }
        var rows = HfDatasetReader.Read(dir.FullName).ToList();
        Assert.Equal(["img0.png", "img1.png"], rows.Select(r => r.ImagePath));
        CheckDetectionRow(rows[1]);
        Assert.Throws<KeyNotFoundException>(() => HfDatasetReader.Read(dir.FullName, "test").ToList());
    }

    [Fact]
    public void Classification_and_grounding_rows()
    {
        var cls = PaperSamples.FromHfRow(new HfRow(Png(), null, "What is it?", "<answer>garden phlox</answer>"), VisualTask.Classification, "flowers/0");
        Assert.Equal("garden phlox", cls.Category);
        Assert.Empty(cls.Boxes);
        var lisa = PaperSamples.FromHfRow(new HfRow(Png(), null, "the thing", "<answer> (250,500),(750,1000) </answer>"), VisualTask.Grounding, "lisa/0");
        Assert.Equal([new PixelBox(10, 10, 30, 20)], lisa.Boxes);
        var e = Assert.Throws<BadImageException>(() => PaperSamples.FromHfRow(new HfRow([1, 2, 3], "x.png", "q", "<answer>a</answer>"), VisualTask.Classification, "bad/7"));
        Assert.Contains("bad/7: image x.png", e.Message);
    }

    [Fact]
    public void A_row_with_a_truncated_image_stops_the_load_or_is_skipped_and_counted_as_chosen()
    {
        var whole = Png();
        var rows = new[]
        {
            new HfRow(whole, "a.png", Problem, Solution),
            new HfRow(whole[..(whole.Length / 2)], "half-downloaded.png", Problem, Solution),
            new HfRow(whole, null, Problem, Solution),
        };
        var e = Assert.Throws<BadImageException>(() => PaperSamples.FromHfRows(rows, VisualTask.Detection, "coco"));
        Assert.Equal(("coco/1", "half-downloaded.png"), (e.SampleId, e.File));
        Assert.StartsWith("coco/1: image half-downloaded.png: truncated PNG", e.Message);

        var loaded = PaperSamples.FromHfRows(rows, VisualTask.Detection, "coco", BadImagePolicy.Skip);
        Assert.Equal(["coco/0", "coco/2"], loaded.Samples.Select(x => x.Id));
        var skipped = Assert.Single(loaded.Skipped);
        Assert.Equal(("coco/1", "half-downloaded.png"), (skipped.Id, skipped.File));
        Assert.StartsWith("2 samples, 1 skipped for their images (first: coco/1: image half-downloaded.png: truncated PNG (chunk IDAT", loaded.Summary());

        // a row whose problem is wrong is no image fault: it stops the load under either choice
        var noCategory = rows.Append(new HfRow(whole, "b.png", "find it", Solution));
        Assert.Contains("coco/3: the detection problem names no category",
            Assert.Throws<InvalidDataException>(() => PaperSamples.FromHfRows(noCategory, VisualTask.Detection, "coco", BadImagePolicy.Skip)).Message);
    }

    [Fact]
    public void Queries_on_missing_or_corrupt_image_files_are_skipped_and_counted_when_asked()
    {
        var images = Directory.CreateDirectory(Path.Combine(dir.FullName, "val2017"));
        File.WriteAllBytes(Path.Combine(images.FullName, "1.png"), Png());
        File.WriteAllBytes(Path.Combine(images.FullName, "2.png"), Png()[..60]);
        var gtPath = Path.Combine(dir.FullName, "gt.json");
        File.WriteAllText(gtPath, """
            {"images": [{"id": 1, "file_name": "val2017/1.png"}, {"id": 2, "file_name": "val2017/2.png"}, {"id": 3, "file_name": "val2017/3.png"}],
             "categories": [{"id": 1, "name": "bus"}], "annotations": []}
            """);
        var gt = CocoDataset.Load(gtPath);
        var queries = gt.Images.Select(i => (i, gt.Categories[0])).ToList();
        var e = Assert.Throws<BadImageException>(() => PaperSamples.FromQueries(gt, queries, dir.FullName));
        Assert.Equal("gt/2/bus", e.SampleId);
        Assert.Contains("2.png", e.Message);
        var loaded = PaperSamples.FromQueries(gt, queries, dir.FullName, BadImagePolicy.Skip);
        Assert.Equal(["gt/1/bus"], loaded.Samples.Select(x => x.Id));
        Assert.Equal(["gt/2/bus", "gt/3/bus"], loaded.Skipped.Select(x => x.Id));
        Assert.Contains("not found", loaded.Skipped[1].Reason);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void COCO_and_LVIS_annotation_files_with_image_folders(bool lvis)
    {
        var images = Directory.CreateDirectory(Path.Combine(dir.FullName, "val2017"));
        File.WriteAllBytes(Path.Combine(images.FullName, "000000000042.png"), Png());
        var image = lvis
            ? """{"id": 42, "width": 40, "height": 20, "coco_url": "http://host/val2017/000000000042.png", "neg_category_ids": [2], "not_exhaustive_category_ids": []}"""
            : """{"id": 42, "width": 40, "height": 20, "file_name": "val2017/000000000042.png"}""";
        var gtPath = Path.Combine(dir.FullName, "gt.json");
        File.WriteAllText(gtPath, $$"""
            {"images": [{{image}}],
             "categories": [{"id": 1, "name": "fire hydrant", "frequency": "r"}, {"id": 2, "name": "bus", "frequency": "c"}],
             "annotations": [{"id": 1, "image_id": 42, "category_id": 1, "bbox": [4, 4, 16, 11], "area": 120, "iscrowd": 0},
                             {"id": 2, "image_id": 42, "category_id": 1, "bbox": [0, 0, 40, 20], "area": 800, "iscrowd": 1}]}
            """);
        var gt = CocoDataset.Load(gtPath);
        Assert.Equal(lvis ? new HashSet<long> { 2 } : [], gt.Image(42).NegCategoryIds);
        var root = dir.FullName;
        var sample = PaperSamples.FromQuery(gt, gt.Image(42), gt.CategoryNamed("fire hydrant"), root);
        Assert.Equal([new PixelBox(4, 4, 20, 15)], sample.Boxes);   // the crowd region is not a box to find
        Assert.Equal(VisualRft.Data.Prompts.Detection("fire hydrant"), sample.Problem);
        Assert.Equal("<answer>[{'Position': [100, 200, 500, 750], 'Confidence': 1}]</answer>", sample.Solution);
        File.Delete(Path.Combine(images.FullName, "000000000042.png"));
        var missing = Assert.Throws<FileNotFoundException>(() => PaperSamples.FromQuery(gt, gt.Image(42), gt.CategoryNamed("bus"), root));
        Assert.Contains("vrft download", missing.Message);
    }
}
