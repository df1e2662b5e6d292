using System.Text.Json;
using VisualRft.Grpo;
using VisualRft.IO;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Tests.Grpo;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>LoRA as PEFT does it, on a tiny random Qwen2-VL: identity at init, only adapters train, merge, PEFT's file layout.</summary>
public sealed class LoraTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    static readonly LoraConfig Config = new() { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "fc1", "qkv"] };

    /// <summary>The logits of the first two training prompts, images included.</summary>
    Tensor Logits(VisionLanguagePolicy policy)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = policy.Encode(fx.Data.Train.Take(2).ToList());
        var logits = policy.Model.Forward(batch.InputIdsTensor(), batch.AttentionMaskTensor(), policy.EncodeImages(batch));
        return logits.MoveToOuterDisposeScope();
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static void Randomise(LoraAdapters adapters, int seed)
    {
        using var _ = no_grad();
        manual_seed(seed);
        foreach (var (_, p) in adapters.named_parameters()) p.copy_(randn_like(p) * 0.05);
    }

    [Fact]
    public void At_init_the_adapted_model_computes_exactly_the_base_and_off_it_is_the_base_again()
    {
        using var policy = fx.NewPolicy();
        using var before = Logits(policy);
        var adapters = policy.Model.AddLora(Config);
        Assert.Contains("model.layers.0.self_attn.q_proj", adapters.ModuleNames);
        Assert.Contains("visual.blocks.0.mlp.fc1", adapters.ModuleNames);
        Assert.DoesNotContain("model.layers.0.self_attn.k_proj", adapters.ModuleNames);
        Assert.True(adapters.TouchesVision);
        Assert.All(policy.Model.parameters(), p => Assert.False(p.requires_grad));

        using (var atInit = Logits(policy)) Assert.True(Same(before, atInit));
        Randomise(adapters, 1);
        using (var adapted = Logits(policy)) Assert.True(before.sub(adapted).abs().max().item<float>() > 1e-3);
        using (adapters.Disable())
        using (var off = Logits(policy))
            Assert.True(Same(before, off));
        Assert.Throws<InvalidOperationException>(() => policy.Model.AddLora(Config));
        Assert.Throws<ArgumentException>(() => LoraAdapters.Attach(fx.NewPolicy().Model, Config with { TargetModules = ["query"] }));
    }

    [Fact]
    public void A_GRPO_step_changes_only_the_adapters_and_the_reference_is_the_model_with_them_off()
    {
        using var policy = fx.NewPolicy();
        var adapters = policy.Model.AddLora(Config with { Dropout = 0.1 });
        var baseWeights = policy.Model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        var adapterWeights = adapters.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());
        using (var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2))
        {
            Assert.Same(policy.Model, trainer.Reference!.Model);   // no second copy of the weights
            Assert.Equal(adapters.named_parameters().Count(), trainer.Optimizer.Parameters.Count);
            var step = trainer.Step();
            Assert.Equal(0, step.Metrics.Kl!.Value, 6);   // B = 0: the policy is its reference at step 1
        }
        foreach (var (name, w) in policy.Model.state_dict()) Assert.True(Same(baseWeights[name], w), name);
        Assert.Contains(adapters.named_parameters(), p => !Same(adapterWeights[p.name], p.parameter));
        using var stillUsable = Logits(policy);   // disposing the trainer left the shared model alone
    }

    [Fact]
    public void A_LoRA_run_checkpoints_its_adapters_and_resumes_them_on_the_same_base()
    {
        var run = Directory.CreateTempSubdirectory("vrft-lora-ckpt-").FullName;
        try
        {
            Dictionary<string, Tensor> trained;
            using (var policy = fx.NewPolicy())
            {
                var adapters = policy.Model.AddLora(Config);
                using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2);
                trainer.Step();
                trainer.SaveCheckpoint(run);
                trained = adapters.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            }
            using var resumed = fx.NewPolicy();
            var fresh = resumed.Model.AddLora(Config);
            using (var trainer = new GrpoTrainer(resumed, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2))
            {
                trainer.LoadCheckpoint(run);
                Assert.Equal(1, trainer.Optimizer.StepCount);
                Assert.All(fresh.named_parameters(), p => Assert.True(Same(trained[p.name], p.parameter), p.name));
                trainer.Step();   // the restored optimizer state fits the adapters
            }
            // A full-parameter run cannot resume from the adapters: the checkpoint is refused, naming what does not fit.
            using var full = fx.NewPolicy();
            using var fullTrainer = new GrpoTrainer(full, fx.Data.Train, new LetterShareReward(), TinyTrainerFixture.Options, totalSteps: 2);
            Assert.Contains("does not fit the model", Assert.Throws<InvalidDataException>(() => fullTrainer.LoadCheckpoint(run)).Message);
        }
        finally { Directory.Delete(run, recursive: true); }
    }

    [Fact]
    public void A_merged_model_computes_what_the_adapted_one_did()
    {
        using var policy = fx.NewPolicy();
        Randomise(policy.Model.AddLora(Config), 2);
        using var adapted = Logits(policy);
        policy.Model.MergeLora();
        Assert.Null(policy.Model.Adapters);
        using var merged = Logits(policy);
        var gap = adapted.sub(merged).abs().max().item<float>();
        Assert.True(gap < 1e-5, $"merged logits differ by {gap}");
    }

    [Fact]
    public void A_saved_adapter_is_in_PEFTs_layout_and_round_trips()
    {
        var dir = Directory.CreateTempSubdirectory("vrft-lora-").FullName;
        try
        {
            using var policy = fx.NewPolicy();
            var adapters = policy.Model.AddLora(Config);
            Randomise(adapters, 3);
            using var adapted = Logits(policy);
            adapters.Save(dir, "tiny-qwen2-vl");

            using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))))
            {
                var c = config.RootElement;
                Assert.Equal(("LORA", 4, 8.0, "tiny-qwen2-vl"), (c.GetProperty("peft_type").GetString(), c.GetProperty("r").GetInt32(),
                    c.GetProperty("lora_alpha").GetDouble(), c.GetProperty("base_model_name_or_path").GetString()));
                Assert.Equal(Config.TargetModules, c.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
            }
            var saved = SafeTensors.Load(Path.Combine(dir, "adapter_model.safetensors"));
            var a = saved["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"];
            var b = saved["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"];
            var q = policy.Model.model.layers[0].self_attn.q_proj.weight!;
            Assert.Equal([4, q.shape[1]], a.shape);
            Assert.Equal([q.shape[0], 4], b.shape);
            Assert.Equal(2 * adapters.ModuleNames.Count, saved.Count);
            foreach (var t in saved.Values) t.Dispose();

            using var fresh = fx.NewPolicy();   // the same base (same seed)
            fresh.Model.LoadLora(dir);
            using (var loaded = Logits(fresh)) Assert.True(Same(adapted, loaded));

            // a shape that does not fit is named
            using var other = new VisionLanguagePolicy(Qwen2VLForConditionalGeneration.Create(
                VisualRft.TinyModel.TinyQwen2Vl.Config(fx.Tokenizer, new VisualRft.TinyModel.TinyPretrainOptions { Hidden = 64, Layers = 1, VisionWidth = 16, VisionDepth = 1 }), 3, CPU),
                fresh.Processor);
            Assert.Contains("lora_A.weight is [4, 32], the model needs [4, 64]", Assert.Throws<InvalidDataException>(() => other.Model.LoadLora(dir)).Message);
            Assert.Null(other.Model.Adapters);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
