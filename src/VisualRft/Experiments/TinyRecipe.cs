using VisualRft.Grpo;
using VisualRft.Rewards;
using VisualRft.Training;

namespace VisualRft.Experiments;

/// <summary>
/// The settings every tiny-scale comparison uses — the quickstart, the tiny tables, the notebooks — in one place: the
/// paper's GRPO (β 0.04 k3 KL, μ 1, per-sequence loss, group-normalised advantages, T 1, top-k 50, linear decay, clip
/// 1.0) with what a 0.9M-parameter model on a CPU needs instead of the 2B settings (a larger learning rate, answers capped
/// at 128 tokens, 2 prompts × 8 samples a step), and SFT on the same shots (the paper's baseline, spec §6.5). Each
/// method's learning rate and step count is its best on the validation split (docs/tiny-model.md, "Choosing the
/// settings"), never on the test split: Visual-RFT 240 steps at 2e-5, SFT 30 steps (it overfits the 32 images later).
/// </summary>
public sealed record TinyRecipe
{
    public int RftSteps { get; init; } = 240;
    public int SftSteps { get; init; } = 30;
    public GrpoOptions Grpo { get; init; } = GrpoOptions.VisualRftPaper with
    {
        LearningRate = 2e-5, MaxCompletionLength = 128, PromptsPerMicroBatch = 2, GradientAccumulation = 1,
    };
    public SftOptions Sft { get; init; } = new() { LearningRate = 1e-4, BatchSize = 8 };
    /// <summary>Greedy answers of held-out prompts are cut here (the longest tiny answer is ~100 tokens).</summary>
    public int EvalMaxNewTokens { get; init; } = 128;
    public RewardPreset Preset { get; init; } = RewardPreset.VisualRft;

    public static TinyRecipe Default { get; } = new();

    /// <summary>The recipe for one seed: the GRPO sampler and prompt order, and SFT's batch order.</summary>
    public TinyRecipe WithSeed(int seed) => this with { Grpo = Grpo with { Seed = seed }, Sft = Sft with { Seed = seed } };
}
