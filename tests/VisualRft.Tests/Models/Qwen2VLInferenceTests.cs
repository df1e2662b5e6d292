using TorchSharp;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>Cached generation against full recompute, batching against single runs, sampling and GRPO log-probs.</summary>
public class Qwen2VLInferenceTests
{
    readonly ITestOutputHelper output;

    public Qwen2VLInferenceTests(ITestOutputHelper output)
    {
        this.output = output;
        TorchRuntime.EnsureLoaded();
    }

    sealed record Case(Qwen2VLForConditionalGeneration Model, Tensor IdsA, ImageInputs ImagesA, Tensor IdsBatch, Tensor MaskBatch, ImageInputs ImagesBatch, Dictionary<string, Tensor> Refs);

    static Case Load(string kind)
    {
        var model = Qwen2VLGoldenTests.LoadCase(kind, "model.safetensors");
        var proc = Qwen2VLGoldenTests.Fixture(kind, "processor.safetensors");
        var refs = Qwen2VLGoldenTests.Fixture(kind, "reference.safetensors");
        using var _ = torch.no_grad();
        var a = model.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]);
        var b = model.EncodeImages(proc["pixel_values_B"], proc["grid_thw_B"]);
        return new Case(model, refs["input_ids_A"].unsqueeze(0), new ImageInputs(a, proc["grid_thw_A"]),
            refs["input_ids_batch"], refs["attention_mask_batch"],
            new ImageInputs(torch.cat([a, b], 0), torch.cat([proc["grid_thw_A"], proc["grid_thw_B"]], 0)), refs);
    }

    static readonly SamplingOptions Greedy8 = new(MaxNewTokens: 8, Greedy: true, PadTokenId: 306);

    [Theory]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Cached_decoding_equals_full_recompute_on_a_left_padded_batch(string kind)
    {
        using var scope = NewDisposeScope();
        var c = Load(kind);
        using var gen = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, Greedy8, returnLogProbs: true);
        using var noGrad = torch.no_grad();
        // Full recompute over prompt + completion: the same log-probs, and every greedy token is the recomputed argmax.
        var full = c.Model.CompletionLogProbs(c.IdsBatch, c.MaskBatch, gen.CompletionIds, gen.CompletionMask, c.ImagesBatch);
        var err = (full - gen.LogProbs!).abs().max().item<float>();
        var ids = torch.cat([c.IdsBatch, gen.CompletionIds], 1);
        var logits = c.Model.Forward(ids, torch.cat([c.MaskBatch, gen.CompletionMask], 1), c.ImagesBatch);
        var p = c.IdsBatch.shape[1];
        var argmax = logits.narrow(1, p - 1, gen.CompletionIds.shape[1]).argmax(-1);
        output.WriteLine($"{kind}: cached vs recomputed log-prob max diff {err:E2}");
        Assert.True(err < 1e-4, $"cached and recomputed log-probs differ by {err}");
        Assert.True(argmax.eq(gen.CompletionIds).all().item<bool>());
    }

    [Theory]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Left_padded_batch_generates_what_single_prompts_generate(string kind)
    {
        using var scope = NewDisposeScope();
        var c = Load(kind);
        using var batch = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, Greedy8);
        using var a = c.Model.Generate(c.IdsA, torch.ones_like(c.IdsA), c.ImagesA, Greedy8);
        Assert.Equal(a.CompletionIds[0].data<long>().ToArray(), batch.CompletionIds[0].data<long>().ToArray());
        // Row B is unpadded in the batch; on its own it must give the same tokens.
        var lenB = c.MaskBatch[1].sum().item<long>();
        var idsB = c.IdsBatch.narrow(0, 1, 1).narrow(1, c.IdsBatch.shape[1] - lenB, lenB);
        var rowsA = c.ImagesA.Embeds.shape[0];
        var imagesB = new ImageInputs(c.ImagesBatch.Embeds.narrow(0, rowsA, c.ImagesBatch.Embeds.shape[0] - rowsA), c.ImagesBatch.GridThw.narrow(0, 1, 1));
        using var b = c.Model.Generate(idsB, torch.ones_like(idsB), imagesB, Greedy8);
        Assert.Equal(b.CompletionIds[0].data<long>().ToArray(), batch.CompletionIds[1].data<long>().ToArray());
    }

    [Theory]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Shared_prompt_pass_gives_the_full_pass_log_probs_and_gradients(string kind)
    {
        using var scope = NewDisposeScope();
        var c = Load(kind);
        var proc = Qwen2VLGoldenTests.Fixture(kind, "processor.safetensors");
        const int g = 3;
        var opts = new SamplingOptions(MaxNewTokens: 8, Temperature: 1.3, PadTokenId: 306);
        using var gen = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts, numSamples: g, generator: new Generator(3));
        // Completions of different lengths, so that padding inside the completion block is exercised too.
        var mask = torch.tensor(new long[] { 8, 5, 1, 8, 3, 6 }).unsqueeze(1).gt(torch.arange(8L)).to_type(ScalarType.Int64);
        var weights = torch.rand([2 * g, 8], generator: new Generator(5));
        ImageInputs Images() => new(torch.cat([c.Model.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]),
            c.Model.EncodeImages(proc["pixel_values_B"], proc["grid_thw_B"])], 0), c.ImagesBatch.GridThw);

        c.Model.zero_grad();
        var images = Images();
        var full = c.Model.CompletionLogProbs(c.IdsBatch.repeat_interleave(g, 0), c.MaskBatch.repeat_interleave(g, 0),
            gen.CompletionIds, mask, c.Model.RepeatForSamples(images, c.IdsBatch, g), 0.7);
        (full * mask * weights).sum().backward();
        var fullGrads = c.Model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        c.Model.zero_grad();
        var shared = c.Model.CompletionLogProbs(c.IdsBatch, c.MaskBatch, Images(), g, gen.CompletionIds, mask, 0.7);
        (shared * mask * weights).sum().backward();

        var err = ((full - shared) * mask).abs().max().item<float>();
        output.WriteLine($"{kind}: shared vs full log-prob max diff {err:E2}");
        Assert.True(err < 1e-5, $"log-probs differ by {err}");
        Assert.Contains("visual.patch_embed.proj.weight", fullGrads.Keys);
        foreach (var (name, p) in c.Model.named_parameters().Where(p => fullGrads.ContainsKey(p.name)))
        {
            var gradErr = (p.grad! - fullGrads[name]).abs().max().item<float>();
            Assert.True(gradErr <= 1e-5 + 1e-4 * fullGrads[name].abs().max().item<float>(), $"{name}: gradients differ by {gradErr}");
        }
        Assert.Throws<ArgumentException>(() => c.Model.CompletionLogProbs(c.IdsBatch, c.MaskBatch, c.ImagesBatch, 2, gen.CompletionIds, mask));
    }

    [Fact]
    public void Sampling_is_reproducible_and_top_k_1_is_greedy()
    {
        using var scope = NewDisposeScope();
        var c = Load("qwen2_vl");
        var opts = new SamplingOptions(MaxNewTokens: 6, Temperature: 1.3, TopK: 50, TopP: 0.95, PadTokenId: 306);
        using var s1 = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts, numSamples: 3, generator: new Generator(7));
        using var s2 = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts, numSamples: 3, generator: new Generator(7));
        Assert.Equal(new long[] { 6, 6 }, s1.CompletionIds.shape);
        Assert.True(s1.CompletionIds.eq(s2.CompletionIds).all().item<bool>());
        using var s3 = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts, numSamples: 3, generator: new Generator(8));
        Assert.False(s1.CompletionIds.eq(s3.CompletionIds).all().item<bool>(), "different seeds gave identical samples");
        using var k1 = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts with { TopK = 1, MaxNewTokens = 8 }, numSamples: 2, generator: new Generator(1));
        using var greedy = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, Greedy8);
        Assert.True(k1.CompletionIds.eq(greedy.CompletionIds.repeat_interleave(2, 0)).all().item<bool>());
        // A tiny top-p keeps only the most likely token, so it is greedy as well.
        using var p0 = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, opts with { TopK = 0, TopP = 1e-6, MaxNewTokens = 8 }, generator: new Generator(1));
        Assert.True(p0.CompletionIds.eq(greedy.CompletionIds).all().item<bool>());
    }

    [Fact]
    public void Stop_tokens_end_rows_and_set_the_completion_mask()
    {
        using var scope = NewDisposeScope();
        var c = Load("qwen2_vl");
        var greedy = c.Refs["greedy_A"].data<long>().ToArray();   // 239,302,199,180,...
        using var g = c.Model.Generate(c.IdsA, torch.ones_like(c.IdsA), c.ImagesA, Greedy8 with { StopTokenIds = [greedy[2]] }, returnLogProbs: true);
        Assert.Equal(new long[] { greedy[0], greedy[1], greedy[2] }, g.CompletionIds[0].data<long>().ToArray());   // all rows stopped: loop ends
        Assert.Equal(new long[] { 1, 1, 1 }, g.CompletionMask[0].data<long>().ToArray());
        using var two = c.Model.Generate(c.IdsBatch, c.MaskBatch, c.ImagesBatch, Greedy8 with { StopTokenIds = [greedy[2]] }, returnLogProbs: true);
        var row0 = two.CompletionIds[0].data<long>().ToArray();
        var mask0 = two.CompletionMask[0].data<long>().ToArray();
        Assert.Equal(greedy.Take(3), row0.Take(3));
        Assert.All(row0.Skip(3), t => Assert.Equal(306, t));
        Assert.Equal(new long[] { 1, 1, 1, 0, 0, 0, 0, 0 }.Take(row0.Length), mask0);
        Assert.All(two.LogProbs![0].data<float>().ToArray().Skip(3), v => Assert.Equal(0f, v));
    }

    [Theory]
    [Trait("Category", "Golden")]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Completion_log_probs_match_the_grpo_reference_and_carry_gradient(string kind)
    {
        using var scope = NewDisposeScope();
        var model = Qwen2VLGoldenTests.LoadCase(kind, "model.legacy.safetensors");
        var proc = Qwen2VLGoldenTests.Fixture(kind, "processor.safetensors");
        var refs = Qwen2VLGoldenTests.Fixture(kind, "reference.safetensors");
        var grpo = Qwen2VLGoldenTests.Fixture(kind, "grpo.safetensors");
        var ids = refs["input_ids_A"].unsqueeze(0);
        var comp = grpo["completion_ids"];
        var g = (int)comp.shape[0];
        // Image features once per prompt, repeated for the G samples: the gradient still reaches the vision tower.
        var embeds = model.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]);
        var images = model.RepeatForSamples(new ImageInputs(embeds, proc["grid_thw_A"]), ids, g);
        var prompts = ids.repeat_interleave(g, 0);
        var logps = model.CompletionLogProbs(prompts, torch.ones_like(prompts), comp, grpo["completion_mask"], images);
        var err = (logps - grpo["on_policy_logps"]).abs().max().item<float>();
        output.WriteLine($"{kind}: completion log-probs max abs err {err:E2}");
        Assert.True(err < 1e-4, $"log-probs differ by {err}");
        (logps * grpo["completion_mask"]).sum().backward();
        var patchGrad = model.visual.patch_embed.proj.weight!.grad;
        Assert.NotNull(patchGrad);
        Assert.True(patchGrad!.abs().sum().item<float>() > 0);
        using var noGrad = torch.no_grad();
        var again = model.CompletionLogProbs(prompts, torch.ones_like(prompts), comp, grpo["completion_mask"], images);
        Assert.False(again.requires_grad);
    }
}
