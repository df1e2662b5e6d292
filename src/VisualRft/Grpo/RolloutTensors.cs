using VisualRft.Policy;
using VisualRft.Rewards;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

/// <summary>
/// What an update needs from a rollout, owned by the trainer that made it (never by a record): the prompts with the
/// policy's image embeddings and their graph (<see cref="PromptTensors"/>), completion ids and mask [B·G, C], reference
/// log-probs (β ≠ 0) and old log-probs (μ &gt; 1).
/// </summary>
internal sealed class RolloutTensors(PromptTensors prompts, Tensor completionIds, Tensor completionMask, Tensor? refLogps, Tensor? oldLogps)
    : IDisposable
{
    public PromptTensors Prompts { get; } = prompts;
    public Tensor CompletionIds { get; } = completionIds;
    public Tensor CompletionMask { get; } = completionMask;
    public Tensor? RefLogps { get; } = refLogps;
    public Tensor? OldLogps { get; } = oldLogps;

    /// <summary>Active completion tokens (the dapo normaliser).</summary>
    public long GeneratedTokens { get { using var s = CompletionMask.sum(); return s.item<long>(); } }

    public void Dispose()
    {
        Prompts.Dispose();
        foreach (var t in new[] { CompletionIds, CompletionMask, RefLogps, OldLogps }) t?.Dispose();
    }
}

/// <summary>
/// A rollout's link back to what made it, carried by <see cref="RolloutGroup.Handle"/>: the reward that
/// <see cref="RolloutGroup.Score()"/> applies, the scaling that <see cref="ScoredGroup.Advantages()"/> uses and, for a
/// trainer's rollout, the tensors its <c>Update</c> needs. The trainer owns those tensors and releases them when it has
/// made <see cref="GrpoTrainer.HeldRollouts"/> newer rollouts or is disposed, so a notebook that samples in a loop does
/// not hold every image graph; the records stay valid either way.
/// </summary>
public sealed class RolloutHandle
{
    internal RolloutHandle(TaskReward reward, RewardScaling scaling, GrpoTrainer? trainer = null, RolloutTensors? tensors = null)
    {
        Reward = reward;
        Scaling = scaling;
        Trainer = trainer;
        Tensors = tensors;
    }

    /// <summary>The reward of the trainer (or of <see cref="RolloutGroup.FromTexts"/>).</summary>
    public TaskReward Reward { get; }

    /// <summary>What divides the centred rewards (<see cref="GrpoOptions.RewardScaling"/>).</summary>
    public RewardScaling Scaling { get; }

    /// <summary>True while the trainer still keeps this rollout's tensors, so that <c>trainer.Update</c> can use it.</summary>
    public bool HoldsTensors => Tensors is not null;

    internal GrpoTrainer? Trainer { get; }
    internal RolloutTensors? Tensors { get; private set; }

    internal void Release()
    {
        Tensors?.Dispose();
        Tensors = null;
    }
}
