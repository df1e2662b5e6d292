using TorchSharp;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>
/// The real Qwen2-VL-2B and -7B architectures, built on the meta device (shapes only, no memory): every parameter's
/// name and shape against the checkpoint tables of qwen2vl-spec.md §2.1, and the 2B total of §2.3.
/// </summary>
public class Qwen2VLArchitectureTests
{
    readonly ITestOutputHelper output;

    public Qwen2VLArchitectureTests(ITestOutputHelper output)
    {
        this.output = output;
        TorchRuntime.EnsureLoaded();
    }

    /// <summary>The expected checkpoint tensors, written out from the spec tables (not from the module code).</summary>
    static Dictionary<string, long[]> Expected(long hidden, long inter, long layers, long kvDim, long vocab, bool tied)
    {
        var e = new Dictionary<string, long[]> { ["visual.patch_embed.proj.weight"] = [1280, 3, 2, 14, 14] };
        for (int n = 0; n < 32; n++)
        {
            var b = $"visual.blocks.{n}.";
            foreach (var norm in new[] { "norm1", "norm2" }) { e[b + norm + ".weight"] = [1280]; e[b + norm + ".bias"] = [1280]; }
            e[b + "attn.qkv.weight"] = [3840, 1280]; e[b + "attn.qkv.bias"] = [3840];
            e[b + "attn.proj.weight"] = [1280, 1280]; e[b + "attn.proj.bias"] = [1280];
            e[b + "mlp.fc1.weight"] = [5120, 1280]; e[b + "mlp.fc1.bias"] = [5120];
            e[b + "mlp.fc2.weight"] = [1280, 5120]; e[b + "mlp.fc2.bias"] = [1280];
        }
        e["visual.merger.ln_q.weight"] = [1280]; e["visual.merger.ln_q.bias"] = [1280];
        e["visual.merger.mlp.0.weight"] = [5120, 5120]; e["visual.merger.mlp.0.bias"] = [5120];
        e["visual.merger.mlp.2.weight"] = [hidden, 5120]; e["visual.merger.mlp.2.bias"] = [hidden];
        e["model.embed_tokens.weight"] = [vocab, hidden];
        for (int l = 0; l < layers; l++)
        {
            var p = $"model.layers.{l}.";
            e[p + "input_layernorm.weight"] = [hidden];
            e[p + "post_attention_layernorm.weight"] = [hidden];
            e[p + "self_attn.q_proj.weight"] = [hidden, hidden]; e[p + "self_attn.q_proj.bias"] = [hidden];
            e[p + "self_attn.k_proj.weight"] = [kvDim, hidden]; e[p + "self_attn.k_proj.bias"] = [kvDim];
            e[p + "self_attn.v_proj.weight"] = [kvDim, hidden]; e[p + "self_attn.v_proj.bias"] = [kvDim];
            e[p + "self_attn.o_proj.weight"] = [hidden, hidden];
            e[p + "mlp.gate_proj.weight"] = [inter, hidden];
            e[p + "mlp.up_proj.weight"] = [inter, hidden];
            e[p + "mlp.down_proj.weight"] = [hidden, inter];
        }
        e["model.norm.weight"] = [hidden];
        if (!tied) e["lm_head.weight"] = [vocab, hidden];
        return e;
    }

    void Check(Qwen2VLConfig config, Dictionary<string, long[]> expected, long? total)
    {
        using var model = new Qwen2VLForConditionalGeneration(config, torch.META, ScalarType.BFloat16);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.True(model.parameters().All(p => p.device.type == DeviceType.META), "parameters were materialised");
        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(actual[name]), $"{name}: [{string.Join(",", actual[name])}]");
        var count = actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));
        output.WriteLine($"{config.Text.HiddenSize}: {actual.Count} tensors, {count:N0} parameters");
        Assert.Equal(729 + (config.Text.TieWordEmbeddings ? 0 : 1), actual.Count);
        if (total is { } t) Assert.Equal(t, count);
    }

    [Fact]
    public void Qwen2VL_2B_has_the_checkpoint_names_shapes_and_2_208_985_600_parameters() =>
        Check(Qwen2VLConfig.Qwen2VL2B(), Expected(1536, 8960, 28, 256, 151936, tied: true), 2_208_985_600);

    [Fact]
    public void Qwen2VL_7B_has_the_checkpoint_names_and_shapes() =>
        Check(Qwen2VLConfig.Qwen2VL7B(), Expected(3584, 18944, 28, 512, 152064, tied: false), null);
}
