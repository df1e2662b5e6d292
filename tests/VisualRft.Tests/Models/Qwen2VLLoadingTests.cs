using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using VisualRft.IO;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>FromPretrained on single-file and sharded folders, dtypes, save/load, seeds, and bad inputs.</summary>
public sealed class Qwen2VLLoadingTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), $"vrft-model-{Guid.NewGuid():N}");

    public Qwen2VLLoadingTests()
    {
        TorchRuntime.EnsureLoaded();
        Directory.CreateDirectory(dir);
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static string Src(string kind, string file) => Path.Combine(Golden.Dir, kind, file);

    string Folder(string name, string kind, bool weights = true)
    {
        var f = Path.Combine(dir, name);
        Directory.CreateDirectory(f);
        File.Copy(Src(kind, "config.json"), Path.Combine(f, "config.json"));
        if (weights) File.Copy(Src(kind, "model.safetensors"), Path.Combine(f, "model.safetensors"));
        return f;
    }

    static float LogitsErr(Qwen2VLForConditionalGeneration m, string kind)
    {
        var proc = Qwen2VLGoldenTests.Fixture(kind, "processor.safetensors");
        var refs = Qwen2VLGoldenTests.Fixture(kind, "reference.safetensors");
        using var _ = torch.no_grad();
        var images = new ImageInputs(m.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]), proc["grid_thw_A"]);
        var logits = m.Forward(refs["input_ids_A"].unsqueeze(0), null, images).to_type(ScalarType.Float32);
        return (logits - refs["logits_A"]).abs().max().item<float>();
    }

    [Theory]
    [InlineData("qwen2_vl")]
    [InlineData("qwen2_5_vl")]
    public void Loads_single_file_and_sharded_folders(string kind)
    {
        using var scope = NewDisposeScope();
        using var single = Qwen2VLForConditionalGeneration.FromPretrained(Folder("single", kind), torch.CPU);
        Assert.True(LogitsErr(single, kind) < 1e-4);

        // Two shards in the legacy layout plus an index, as the released checkpoints ship.
        var sharded = Folder("sharded", kind, weights: false);
        var all = SafeTensors.Load(Src(kind, "model.legacy.safetensors"));
        var names = all.Keys.Order(StringComparer.Ordinal).ToList();
        var map = new JsonObject();
        for (int s = 0; s < 2; s++)
        {
            var file = $"model-0000{s + 1}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == s).ToDictionary(n => n, n => all[n]);
            SafeTensors.Save(Path.Combine(sharded, file), part);
            foreach (var n in part.Keys) map[n] = file;
        }
        File.WriteAllText(Path.Combine(sharded, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        using var fromShards = Qwen2VLForConditionalGeneration.FromPretrained(sharded, torch.CPU);
        var a = single.state_dict();
        foreach (var (name, t) in fromShards.state_dict()) Assert.True(t.eq(a[name]).all().item<bool>(), name);
    }

    [Fact]
    public void Loads_bf16_and_f16_checkpoints_and_casts_to_the_requested_dtype()
    {
        using var scope = NewDisposeScope();
        foreach (var type in new[] { ScalarType.BFloat16, ScalarType.Float16 })
        {
            var f = Folder($"half-{type}", "qwen2_vl", weights: false);
            var all = SafeTensors.Load(Src("qwen2_vl", "model.safetensors"));
            SafeTensors.Save(Path.Combine(f, "model.safetensors"), all.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(type)));
            using var asF32 = Qwen2VLForConditionalGeneration.FromPretrained(f, torch.CPU, ScalarType.Float32);
            var expected = all["model.language_model.layers.0.mlp.up_proj.weight"].to_type(type).to_type(ScalarType.Float32);
            Assert.True(asF32.model.layers[0].mlp.up_proj.weight.eq(expected).all().item<bool>());
            using var native = Qwen2VLForConditionalGeneration.FromPretrained(f, torch.CPU, type);
            Assert.Equal(type, native.DType);
            Assert.True(LogitsErr(native, "qwen2_vl") < 0.5, "half-precision logits are far off");
        }
    }

    [Fact]
    public void Saves_legacy_names_and_round_trips_and_seeded_init_is_reproducible()
    {
        using var scope = NewDisposeScope();
        var cfg = Qwen2VLConfig.Tiny();
        using var a = Qwen2VLForConditionalGeneration.Create(cfg, seed: 3);
        using var b = Qwen2VLForConditionalGeneration.Create(cfg, seed: 3);
        using var c = Qwen2VLForConditionalGeneration.Create(cfg, seed: 4);
        var q = "model.layers.1.self_attn.q_proj.weight";
        Assert.True(a.state_dict()[q].eq(b.state_dict()[q]).all().item<bool>());
        Assert.False(a.state_dict()[q].eq(c.state_dict()[q]).all().item<bool>());
        var path = Path.Combine(dir, "tiny.safetensors");
        a.SaveSafetensors(path);
        var keys = SafeTensors.ReadHeader(path).Tensors.Select(t => t.Name).ToList();
        Assert.Contains("visual.merger.mlp.2.weight", keys);
        Assert.Contains("model.embed_tokens.weight", keys);
        Assert.DoesNotContain("lm_head.weight", keys);   // tied
        c.LoadSafetensors(path);
        Assert.True(a.state_dict()[q].eq(c.state_dict()[q]).all().item<bool>());
    }

    [Fact]
    public void Missing_files_are_named()
    {
        var missing = Path.Combine(dir, "nowhere");
        Assert.Contains("nowhere", Assert.Throws<DirectoryNotFoundException>(() => Qwen2VLForConditionalGeneration.FromPretrained(missing)).Message);
        var noConfig = Path.Combine(dir, "empty");
        Directory.CreateDirectory(noConfig);
        Assert.Contains("config.json", Assert.Throws<FileNotFoundException>(() => Qwen2VLForConditionalGeneration.FromPretrained(noConfig)).Message);
        var noWeights = Folder("noweights", "qwen2_vl", weights: false);
        Assert.Contains("model.safetensors", Assert.Throws<FileNotFoundException>(() => Qwen2VLForConditionalGeneration.FromPretrained(noWeights)).Message);
        File.WriteAllText(Path.Combine(noWeights, "model.safetensors.index.json"), """{"weight_map":{"model.norm.weight":"model-00001-of-00002.safetensors"}}""");
        Assert.Contains("model-00001-of-00002.safetensors", Assert.Throws<FileNotFoundException>(() => Qwen2VLForConditionalGeneration.FromPretrained(noWeights)).Message);
    }

    [Fact]
    public void Inconsistent_weights_list_missing_unexpected_and_wrong_shape_tensors()
    {
        using var scope = NewDisposeScope();
        var f = Folder("bad", "qwen2_vl", weights: false);
        var all = SafeTensors.Load(Src("qwen2_vl", "model.legacy.safetensors"));
        all.Remove("model.norm.weight");
        all["visual.blocks.0.attn.qkv.bias"] = torch.zeros(5);
        all["model.extra.weight"] = torch.zeros(2);
        SafeTensors.Save(Path.Combine(f, "model.safetensors"), all);
        var e = Assert.Throws<InvalidDataException>(() => Qwen2VLForConditionalGeneration.FromPretrained(f, torch.CPU));
        Assert.Contains(f, e.Message);
        Assert.Contains("missing: model.norm.weight", e.Message);
        Assert.Contains("unexpected: model.extra.weight", e.Message);
        Assert.Contains("visual.blocks.0.attn.qkv.bias: checkpoint [5], model [96]", e.Message);
    }

    [Fact]
    public void Config_reads_the_flat_layout_and_names_missing_keys()
    {
        var nested = JsonNode.Parse(File.ReadAllText(Src("qwen2_vl", "config.json")))!.AsObject();
        // The released 2B file: text fields at the root, rope under rope_scaling.
        var flat = new JsonObject();
        foreach (var (k, v) in nested) if (k != "text_config") flat[k] = v?.DeepClone();
        foreach (var (k, v) in nested["text_config"]!.AsObject()) if (k is not ("rope_parameters" or "model_type")) flat[k] = v?.DeepClone();
        flat["rope_theta"] = 1000000.0;
        flat["rope_scaling"] = new JsonObject { ["type"] = "mrope", ["mrope_section"] = new JsonArray(2, 3, 3) };
        var a = Qwen2VLConfig.Parse(nested, "nested");
        var b = Qwen2VLConfig.Parse(flat, "flat");
        Assert.Equal(JsonSerializer.Serialize(a), JsonSerializer.Serialize(b));
        Assert.Equal(new[] { 2, 3, 3 }, b.Text.MropeSection);
        Assert.True(b.Text.TieWordEmbeddings);
        Assert.Equal(32, b.Vision.Width);
        Assert.Equal(64, b.Vision.OutHiddenSize);

        var path = Path.Combine(dir, "config.json");
        nested["text_config"]!.AsObject().Remove("num_key_value_heads");
        File.WriteAllText(path, nested.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => Qwen2VLConfig.Load(path));
        Assert.Contains("num_key_value_heads", e.Message);
        Assert.Contains(path, e.Message);
        var v25 = JsonNode.Parse(File.ReadAllText(Src("qwen2_5_vl", "config.json")))!.AsObject();
        v25["vision_config"]!.AsObject().Remove("fullatt_block_indexes");
        Assert.Contains("vision_config.fullatt_block_indexes", Assert.Throws<InvalidDataException>(() => Qwen2VLConfig.Parse(v25, "x")).Message);
        flat["model_type"] = "llama";
        Assert.Contains("llama", Assert.Throws<InvalidDataException>(() => Qwen2VLConfig.Parse(flat, "flat")).Message);
    }

    [Fact]
    public void Wrong_input_shapes_give_clear_errors()
    {
        using var scope = NewDisposeScope();
        using var m = Qwen2VLForConditionalGeneration.Create(Qwen2VLConfig.Tiny(), seed: 1);
        var grid = torch.tensor(new long[] { 1, 4, 6 }).view(1, 3);
        Assert.Contains("pixel_values", Assert.Throws<ArgumentException>(() => m.EncodeImages(torch.zeros(24, 1000), grid)).Message);
        Assert.Contains("image_grid_thw", Assert.Throws<ArgumentException>(() => m.EncodeImages(torch.zeros(15, 1176), torch.tensor(new long[] { 1, 3, 5 }).view(1, 3))).Message);
        var embeds = m.EncodeImages(torch.zeros(24, 1176), grid);
        var ids = torch.tensor(new long[] { 304, 302, 300, 300, 300, 303 }).view(1, 6);   // 3 image tokens, 6 embeddings
        Assert.Contains("image tokens", Assert.Throws<ArgumentException>(() => m.Forward(ids, null, new ImageInputs(embeds, grid))).Message);
        Assert.Contains("attention_mask", Assert.Throws<ArgumentException>(() => m.GetRopeIndex(ids, torch.ones(1, 5), grid)).Message);
        Assert.Throws<ArgumentException>(() => m.Generate(ids, torch.ones(1, 5), null, new SamplingOptions()));
    }
}
