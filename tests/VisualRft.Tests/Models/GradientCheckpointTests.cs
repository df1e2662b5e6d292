using VisualRft.Grpo;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Tests.Grpo;
using VisualRft.TinyModel;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>Gradient checkpointing recomputes each block in the backward: the gradients are the plain pass's (float32,
/// the tiny model with two decoder layers and two vision blocks), through the vision tower, under LoRA, in a GRPO step and
/// an SFT step. One collection: the tests count recomputed blocks, which another test's checkpointing would add to.</summary>
[Collection(nameof(BitForBit))]
public sealed class GradientCheckpointTests(TinyTrainerFixture fx) : IClassFixture<TinyTrainerFixture>
{
    VisionLanguagePolicy NewPolicy() => new(Qwen2VLForConditionalGeneration.Create(
        TinyQwen2Vl.Config(fx.Tokenizer, new TinyPretrainOptions { Hidden = 32, Layers = 2, VisionWidth = 16, VisionDepth = 2 }), 5, CPU), fx.NewProcessor());

    /// <summary>Every trained parameter's gradient (the adapters' under LoRA) of a loss over the logits of two prompts, images encoded with gradient.</summary>
    Dictionary<string, Tensor> Gradients(VisionLanguagePolicy policy, bool checkpointing)
    {
        policy.Model.GradientCheckpointing = checkpointing;
        policy.Model.zero_grad();
        policy.Model.Adapters?.zero_grad();   // not the model's submodules
        using (var scope = NewDisposeScope())
        {
            var batch = policy.Encode([.. fx.Data.Train.Take(2)]);
            var logits = policy.Model.Forward(batch.InputIdsTensor(), batch.AttentionMaskTensor(), policy.EncodeImages(batch));
            logits.log_softmax(-1).select(-1, 7).mean().backward();
        }
        var trained = policy.Model.Adapters?.named_parameters() ?? policy.Model.named_parameters();
        return trained.Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }

    static double MaxDifference(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        return a.Max(kv => kv.Value.sub(b[kv.Key]).abs().max().item<float>());
    }

    [Fact]
    public void The_checkpointed_backward_gives_every_parameter_the_plain_gradient()
    {
        using var policy = NewPolicy();
        var plain = Gradients(policy, checkpointing: false);
        var before = GradientCheckpoint.Recomputed;
        var recomputed = Gradients(policy, checkpointing: true);
        Assert.Equal(2 + 2, GradientCheckpoint.Recomputed - before);   // both decoder layers and both vision blocks
        Assert.Contains("visual.blocks.1.attn.qkv.weight", recomputed.Keys);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", recomputed.Keys);
        Assert.True(plain.Values.Max(g => g.abs().max().item<float>()) > 1e-3, "the loss must reach the weights");
        Assert.InRange(MaxDifference(plain, recomputed), 0, 1e-6);
    }

    [Fact]
    public void Under_LoRA_the_adapters_get_their_plain_gradients_and_dropout_is_refused()
    {
        using var policy = NewPolicy();
        policy.Model.AddLora(new LoraConfig { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"] });
        using (no_grad())
        {
            manual_seed(1);
            foreach (var p in policy.Model.Adapters!.parameters()) p.copy_(randn_like(p) * 0.05);
        }
        var plain = Gradients(policy, checkpointing: false);
        var recomputed = Gradients(policy, checkpointing: true);
        Assert.Equal(policy.Model.Adapters!.parameters().Count(), recomputed.Count);   // every adapter, the first layer's included
        Assert.InRange(MaxDifference(plain, recomputed), 0, 1e-6);

        using var withDropout = NewPolicy();
        withDropout.Model.AddLora(new LoraConfig { R = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["q_proj"] });
        var error = Assert.Throws<InvalidOperationException>(() => Gradients(withDropout, checkpointing: true));
        Assert.Contains("lora_dropout 0.1", error.Message);
    }

    [Fact]
    public void A_GRPO_step_with_checkpointing_has_the_plain_steps_loss_and_gradient_norm()
    {
        StepMetrics Step(bool checkpointing)
        {
            using var policy = NewPolicy();
            using var trainer = new GrpoTrainer(policy, fx.Data.Train, new LetterShareReward(),
                TinyTrainerFixture.Options with { GradientCheckpointing = checkpointing }, totalSteps: 2);
            Assert.Equal(checkpointing, policy.Model.GradientCheckpointing);
            return trainer.Step().Metrics;
        }
        var (plain, recomputed) = (Step(false), Step(true));
        Assert.Equal(plain.Reward.Mean, recomputed.Reward.Mean);   // the same rollout: only the update differs
        Assert.True(plain.GradNorm > 0);
        Assert.Equal(plain.Loss, recomputed.Loss, 1e-6);
        Assert.Equal(plain.GradNorm, recomputed.GradNorm, 1e-6);
    }
    [Fact]
    public void An_SFT_step_with_checkpointing_has_the_plain_steps_loss_and_gradient_norm()
    {
        SftStepResult Step(bool checkpointing)
        {
            using var policy = NewPolicy();
            using var sft = new SftTrainer(policy, [.. fx.Data.Train.Take(4)], new SftOptions { BatchSize = 4, GradientCheckpointing = checkpointing }, totalSteps: 1);
            var before = GradientCheckpoint.Recomputed;
            var step = sft.Train().Single();
            Assert.Equal(checkpointing, GradientCheckpoint.Recomputed > before);
            return step;
        }
        var (plain, recomputed) = (Step(false), Step(true));
        Assert.True(plain.GradNorm > 0);
        Assert.Equal(plain.Loss, recomputed.Loss, 1e-6);
        Assert.Equal(plain.GradNorm, recomputed.GradNorm, 1e-6);
    }
}
