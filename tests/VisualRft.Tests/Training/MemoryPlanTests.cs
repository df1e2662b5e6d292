using VisualRft.Grpo;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.Tests.Grpo;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Tests.Training;

/// <summary>The memory plan counts what the trainer really allocates: the same parameters, the same trained set, the
/// same reference and the same key-value cache, for a full run, a frozen tower and LoRA.</summary>
public sealed class MemoryPlanTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    static long Bytes(IEnumerable<Tensor> ts) => ts.Sum(t => t.numel() * t.ElementSize);

    public static TheoryData<string> Runs => ["full", "frozen tower", "lora"];

    [Theory]
    [MemberData(nameof(Runs))]
    public void The_plan_counts_what_a_GRPO_trainer_allocates(string run)
    {
        var lora = run == "lora" ? new LoraConfig { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "qkv"] } : null;
        var options = TinyTrainerFixture.Options with { FreezeVisionTower = run == "frozen tower" };
        var plan = MemoryPlan.For(fx.NewConfig(), new MemoryPlanOptions
        {
            NumGenerations = options.NumGenerations, Prompts = 2, PromptTokens = 40, MaxNewTokens = options.MaxCompletionLength,
            Lora = lora, FreezeVisionTower = options.FreezeVisionTower, Reference = options.UsesReference,
        });
        using var policy = fx.NewPolicy();
        var adapters = lora is null ? null : policy.Model.AddLora(lora);
        using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(), options, totalSteps: 1);
        trainer.Step();

        var weights = policy.Model.parameters().Concat(adapters?.parameters() ?? []).ToList();
        Assert.Equal(weights.Sum(p => p.numel()), plan.Parameters);
        Assert.Equal(Bytes(weights), plan.Weights);
        Assert.Equal(trainer.Optimizer.Parameters.Sum(p => p.numel()), plan.Trainable);
        Assert.Equal(Bytes(trainer.Optimizer.Parameters), plan.Gradients);
        Assert.Equal(2 * plan.Gradients, plan.Optimizer);
        Assert.Equal(ReferenceEquals(trainer.Reference?.Model, policy.Model) || trainer.Reference is null ? 0 : Bytes(trainer.Reference.Model.parameters()),
            plan.Reference);
        using var cache = KvCache.Allocate(policy.Model.Config.Text, 2L * options.NumGenerations, 40 + options.MaxCompletionLength, ScalarType.Float32, CPU);
        Assert.Equal(Bytes(cache.Keys.Concat(cache.Values)), plan.KvCache);
    }

    [Fact]
    public void A_run_that_cannot_fit_is_refused_naming_its_parts()
    {
        var plan = MemoryPlan.For(fx.NewConfig());
        Assert.Null(plan.Refusal(1));
        var refusal = MemoryPlan.For(fx.NewConfig()).Refusal(1e-6);
        Assert.Contains("activations", refusal);
        Assert.Contains("weights", refusal);
        Assert.Contains("--lora", refusal);
    }
    [Fact]
    public void Bf16_adds_float32_master_weights_and_checkpointing_or_LoRA_keep_fewer_activations()
    {
        var config = Qwen2VLConfig.Qwen2VL2B();
        var plain = MemoryPlan.For(config, new MemoryPlanOptions { DType = ScalarType.BFloat16 });
        Assert.Equal(4 * plain.Trainable, plain.MasterWeights);
        Assert.Equal(2 * 4 * plain.Trainable, plain.Optimizer);   // AdamW's moments in float32 beside bf16 weights
        Assert.Equal(0, MemoryPlan.For(config).MasterWeights);
        var checkpointed = MemoryPlan.For(config, new MemoryPlanOptions { DType = ScalarType.BFloat16, GradientCheckpointing = true });
        Assert.InRange(checkpointed.Activations, 1, plain.Activations / 2);
        var lora = MemoryPlan.For(config, new MemoryPlanOptions { DType = ScalarType.BFloat16, Lora = new LoraConfig { R = 64, Alpha = 128 } });
        Assert.InRange(lora.Activations, 1, plain.Activations - 1);   // frozen weights keep no inputs for their gradients
        Assert.True(checkpointed.Total < plain.Total && plain.Total <= 80L << 30, $"{plain.Total >> 30} GiB");
    }
}
