using TorchSharp;
using VisualRft.Imaging;
using VisualRft.IO;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Imaging;

public class Qwen2VLImageProcessorTests
{
    public Qwen2VLImageProcessorTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData(448, 448, 448, 448)]
    [InlineData(480, 640, 476, 644)]
    [InlineData(3000, 4000, 2996, 4004)]
    [InlineData(70, 70, 56, 56)]     // round(2.5) = 2: banker's rounding
    [InlineData(20, 30, 56, 84)]     // scaled up to min_pixels
    [InlineData(56, 84, 56, 84)]
    [InlineData(70, 100, 56, 112)]   // image B of the fixture
    public void Smart_resize_matches_the_reference_table(int h, int w, int eh, int ew) =>
        Assert.Equal((eh, ew), Qwen2VLImageProcessor.SmartResize(h, w));

    [Fact]
    public void Smart_resize_scales_down_to_max_pixels_and_rejects_extreme_aspect_ratios()
    {
        Assert.Equal((532, 728), Qwen2VLImageProcessor.SmartResize(3000, 4000, maxPixels: 401408));
        Assert.Throws<ArgumentException>(() => Qwen2VLImageProcessor.SmartResize(10, 2010));
    }

    [Fact]
    public void Patch_order_equals_the_reference_reshape_and_permute()
    {
        var rng = new Random(5);
        var px = new byte[84 * 56 * 3];
        rng.NextBytes(px);
        var proc = new Qwen2VLImageProcessor();
        var f = proc.Preprocess(new RgbImage(84, 56, px));
        Assert.Equal((1, 4, 6), f.GridThw[0]);
        Assert.Equal(24, f.NumPatches);
        Assert.Equal(6, f.TokenCount(0));
        // the HF code path: CHW normalised frame, tiled to 2 frames, reshape [1,2,3,2,2,14,3,2,14], permute, flatten
        var chw = torch.tensor(px.Select(b => (float)b).ToArray(), new long[] { 56, 84, 3 }).permute(2, 0, 1);
        var mean = torch.tensor(Qwen2VLImageProcessor.ClipMean).view(3, 1, 1);
        var std = torch.tensor(Qwen2VLImageProcessor.ClipStd).view(3, 1, 1);
        var norm = (chw * (float)(1.0 / 255.0) - mean) / std;
        var frames = torch.stack(new[] { norm, norm });
        var expected = frames.reshape(1, 2, 3, 2, 2, 14, 3, 2, 14).permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(24, 1176);
        var got = f.PixelValuesTensor();
        Assert.True(got.allclose(expected, rtol: 0, atol: 1e-5), $"max diff {(got - expected).abs().max().item<float>()}");
    }

    [Fact]
    public void Pil_bicubic_keeps_a_constant_image_constant_and_copies_on_same_size()
    {
        var px = Enumerable.Repeat((byte)77, 100 * 70 * 3).ToArray();
        var src = new RgbImage(100, 70, px);
        var r = PilBicubic.Resize(src, 37, 150);
        Assert.All(r.Pixels, b => Assert.Equal(77, b));
        var same = PilBicubic.Resize(src, 100, 70);
        Assert.NotSame(src.Pixels, same.Pixels);
        Assert.Equal(src.Pixels, same.Pixels);
    }

    [Fact]
    public void Reads_preprocessor_config_in_both_layouts()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vrft-pp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var a = Path.Combine(dir, "a.json");
        File.WriteAllText(a, """{"min_pixels": 3136, "max_pixels": 401408, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}""");
        Assert.Equal(401408, Qwen2VLImageProcessor.FromPreprocessorConfig(a).MaxPixels);
        var b = Path.Combine(dir, "b.json");
        File.WriteAllText(b, """{"size": {"shortest_edge": 1000, "longest_edge": 200000}}""");
        var pb = Qwen2VLImageProcessor.FromPreprocessorConfig(b);
        Assert.Equal((1000, 200000), (pb.MinPixels, pb.MaxPixels));
        var c = Path.Combine(dir, "c.json");
        File.WriteAllText(c, """{"image_mean": [0.5, 0.5]}""");
        var e = Assert.Throws<InvalidDataException>(() => Qwen2VLImageProcessor.FromPreprocessorConfig(c));
        Assert.Contains("image_mean", e.Message);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [InlineData("qwen2_vl", "A", 0.0)]     // README asks 1e-5 for A; the port is bit-exact
    [InlineData("qwen2_vl", "B", 0.0)]     // PIL bicubic reproduced bit for bit
    [InlineData("qwen2_5_vl", "A", 0.0)]
    [InlineData("qwen2_5_vl", "B", 0.0)]
    public void Pixel_values_and_grid_match_the_hf_pil_processor(string kind, string image, double tol)
    {
        var golden = SafeTensors.Load(Path.Combine(Golden.Dir, kind, "processor.safetensors"));
        var f = new Qwen2VLImageProcessor().Preprocess(Path.Combine(Golden.Dir, $"image_{image}.png"));
        var grid = golden[$"grid_thw_{image}"];
        Assert.Equal(grid.data<long>().ToArray(), f.GridThwTensor().data<long>().ToArray());
        var expected = golden[$"pixel_values_{image}"];
        var got = f.PixelValuesTensor();
        Assert.Equal(expected.shape, got.shape);
        double maxDiff = (got - expected).abs().max().item<float>();
        Console.WriteLine($"[golden] {kind} pixel_values_{image}: max |diff| = {maxDiff:E3}");
        Assert.True(maxDiff <= tol, $"{kind} image {image}: max |diff| {maxDiff}");
    }
}
