using TorchSharp;
using VisualRft.IO;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>
/// Parity with the Hugging Face reference (fixture README): tiny random Qwen2-VL and Qwen2.5-VL models in float32,
/// loaded from both key layouts. Tolerances: image features and logits 1e-4 absolute (relative 1e-4 for larger
/// values), position ids and greedy tokens exact.
/// </summary>
[Trait("Category", "Golden")]
public class Qwen2VLGoldenTests
{
    const double Tol = 1e-4;
    readonly ITestOutputHelper output;

    public Qwen2VLGoldenTests(ITestOutputHelper output)
    {
        this.output = output;
        TorchRuntime.EnsureLoaded();
    }

    public static TheoryData<string, string> Cases() => new()
    {
        { "qwen2_vl", "model.safetensors" }, { "qwen2_vl", "model.legacy.safetensors" },
        { "qwen2_5_vl", "model.safetensors" }, { "qwen2_5_vl", "model.legacy.safetensors" },
    };

    internal static Qwen2VLForConditionalGeneration LoadCase(string kind, string weights)
    {
        TorchRuntime.EnsureLoaded();
        var dir = Path.Combine(Golden.Dir, kind);
        var m = new Qwen2VLForConditionalGeneration(Qwen2VLConfig.Load(Path.Combine(dir, "config.json")), torch.CPU, ScalarType.Float32);
        m.LoadSafetensors(Path.Combine(dir, weights));
        m.eval();
        return m;
    }

    internal static Dictionary<string, Tensor> Fixture(string kind, string file) => SafeTensors.Load(Path.Combine(Golden.Dir, kind, file));

    /// <summary>Largest |a − b| / max(1, |b|): absolute below 1, relative above, as the README states.</summary>
    static double Err(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var d = (actual.to_type(ScalarType.Float64) - expected.to_type(ScalarType.Float64)).abs();
        using var s = expected.to_type(ScalarType.Float64).abs().clamp_min(1.0);
        return (d / s).max().item<double>();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Image_features_logits_and_greedy_tokens_match(string kind, string weights)
    {
        using var scope = NewDisposeScope();
        using var model = LoadCase(kind, weights);
        var proc = Fixture(kind, "processor.safetensors");
        var refs = Fixture(kind, "reference.safetensors");
        using var noGrad = torch.no_grad();

        var embedsA = model.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]);
        var eImg = Err(embedsA, refs["image_embeds_A"]);

        var idsA = refs["input_ids_A"].unsqueeze(0);
        var imagesA = new ImageInputs(embedsA, proc["grid_thw_A"]);
        var eLogits = Err(model.Forward(idsA, null, imagesA), refs["logits_A"]);

        var embedsB = model.EncodeImages(proc["pixel_values_B"], proc["grid_thw_B"]);
        var both = new ImageInputs(torch.cat([embedsA, embedsB], 0), torch.cat([proc["grid_thw_A"], proc["grid_thw_B"]], 0));
        var mask = refs["attention_mask_batch"];
        var logitsBatch = model.Forward(refs["input_ids_batch"], mask, both);
        // Padded positions carry no meaning (uniform attention over masked keys); compare where the mask is 1.
        var keep = mask.to_type(ScalarType.Bool).unsqueeze(-1).expand_as(logitsBatch);
        var eBatch = Err(logitsBatch.masked_select(keep), refs["logits_batch"].masked_select(keep));
        var eBatchAll = Err(logitsBatch, refs["logits_batch"]);

        using var gen = model.Generate(idsA, torch.ones_like(idsA), imagesA, new SamplingOptions(MaxNewTokens: 8, Greedy: true, PadTokenId: 306));
        var greedy = gen.CompletionIds[0];

        output.WriteLine($"{kind}/{weights}: image_embeds max err {eImg:E2}, logits_A {eLogits:E2}, logits_batch (mask=1) {eBatch:E2}, logits_batch (all positions) {eBatchAll:E2}");
        output.WriteLine($"greedy {string.Join(",", greedy.data<long>().ToArray())} vs reference {string.Join(",", refs["greedy_A"].data<long>().ToArray())}");
        Assert.True(eImg <= Tol, $"image features differ by {eImg}");
        Assert.True(eLogits <= Tol, $"logits_A differ by {eLogits}");
        Assert.True(eBatch <= Tol, $"logits_batch differ by {eBatch}");
        Assert.Equal(refs["greedy_A"].data<long>().ToArray(), greedy.data<long>().ToArray());
    }

    [Theory]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Rope_index_matches_single_and_left_padded_batch(string kind)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.EnsureLoaded();
        var config = Qwen2VLConfig.Load(Path.Combine(Golden.Dir, kind, "config.json"));
        var proc = Fixture(kind, "processor.safetensors");
        var refs = Fixture(kind, "reference.safetensors");
        var (pos, deltas) = RopeIndex.Compute(refs["input_ids_A"].unsqueeze(0), null, proc["grid_thw_A"], config);
        Assert.Equal(refs["position_ids_A"].data<long>().ToArray(), pos.data<long>().ToArray());
        Assert.Equal(refs["position_ids_A"].shape, pos.shape);
        Assert.Equal(refs["rope_deltas_A"].data<long>().ToArray(), deltas.data<long>().ToArray());
        var grid = torch.cat([proc["grid_thw_A"], proc["grid_thw_B"]], 0);
        var (posB, deltasB) = RopeIndex.Compute(refs["input_ids_batch"], refs["attention_mask_batch"], grid, config);
        Assert.Equal(refs["position_ids_batch"].data<long>().ToArray(), posB.data<long>().ToArray());
        Assert.Equal(refs["rope_deltas_batch"].data<long>().ToArray(), deltasB.data<long>().ToArray());
        output.WriteLine($"{kind}: rope_deltas_A {deltas[0, 0].item<long>()}, rope_deltas_batch [{string.Join(",", deltasB.data<long>().ToArray())}]");
    }
}
