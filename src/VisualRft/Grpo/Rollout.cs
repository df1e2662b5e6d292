using System.Diagnostics;
using VisualRft.Data;
using VisualRft.Geometry;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Rewards;
using VisualRft.Rewards.Parsing;
using static TorchSharp.torch;

namespace VisualRft.Grpo;

// Stage 1 of a GRPO step (DESIGN.md "The experience"): the trainer samples G completions per prompt. The records here
// are plain data — no tensors, nothing to dispose, valid after the trainer, policy and dataset that made them are gone;
// the tensors the update needs are reached through RolloutGroup.Handle, owned by the trainer.

public sealed partial class GrpoTrainer
{
    /// <summary>Rollouts whose tensors the trainer keeps for <see cref="Update"/>; older ones are released (a notebook
    /// that samples in a loop would otherwise hold every image graph).</summary>
    public const int HeldRollouts = 4;

    SamplingOptions Sampling => new(MaxNewTokens: Options.MaxCompletionLength, Temperature: Options.Temperature,
        TopK: Options.TopK, TopP: Options.TopP, StopTokenIds: Policy.StopTokenIds, PadTokenId: Policy.PadTokenId);

    /// <summary>G completions for one prompt.</summary>
    public RolloutGroup Rollout(VisualSample sample) => Rollout([sample]);

    /// <summary>
    /// G completions for each prompt, sampled as one batch with the KV cache. The returned record is plain data; the
    /// tensors that <see cref="Update"/> needs are kept here for the last <see cref="HeldRollouts"/> rollouts.
    /// </summary>
    public RolloutGroup Rollout(IReadOnlyList<VisualSample> samples)
    {
        using var call = Enter();
        var rollout = RolloutCore(samples);
        _held.AddLast(rollout.Handle);
        while (_held.Count > HeldRollouts)
        {
            _held.First!.Value.Release();
            _held.RemoveFirst();
        }
        return rollout;
    }

    /// <summary>
    /// The policy encodes the prompts (the vision tower once per prompt) and samples; the reference's log-probs (β ≠ 0)
    /// and the sampling policy's (μ &gt; 1, fixed before the inner updates change it, TRL) follow without gradient.
    /// </summary>
    RolloutGroup RolloutCore(IReadOnlyList<VisualSample> samples)
    {
        var g = Options.NumGenerations;
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var prompts = Policy.EncodePrompts(samples, Options.MaxPromptLength);
        var generated = Policy.Sample(prompts, Sampling, g, _sampler);
        var generateMs = clock.Elapsed.TotalMilliseconds;

        clock.Restart();
        Tensor? refLogps = null, oldLogps = null;
        using (no_grad())
        {
            refLogps = Reference?.CompletionLogProbs(prompts, generated.CompletionIds, generated.CompletionMask, Options.Temperature);
            if (Options.Mu > 1) oldLogps = Policy.CompletionLogProbs(prompts, generated.CompletionIds, generated.CompletionMask, Options.Temperature);
        }
        var referenceMs = clock.Elapsed.TotalMilliseconds;

        var completions = Describe(generated, refLogps, g);
        var tensors = new RolloutTensors(prompts, generated.CompletionIds, generated.CompletionMask, refLogps, oldLogps);
        prompts.MoveToOuterDisposeScope();
        foreach (var t in new[] { generated.CompletionIds, generated.CompletionMask, refLogps, oldLogps }) t?.MoveToOuterDisposeScope();
        return new RolloutGroup([.. samples], g, completions, Policy.AnswerFrame, prompts.Frames, generateMs, referenceMs,
            new RolloutHandle(Reward, Options.RewardScaling, this, tensors));
    }

    Completion[] Describe(GenerationOutput generated, Tensor? refLogps, int g)
    {
        var texts = Policy.Decode(generated.CompletionIds, generated.CompletionMask);
        var (n, c) = ((int)generated.CompletionIds.shape[0], (int)generated.CompletionIds.shape[1]);
        var ids = Rows<long>(generated.CompletionIds, n, c);
        var mask = Rows<long>(generated.CompletionMask, n, c);
        var logps = Rows<float>(generated.LogProbs!, n, c);
        var refs = refLogps is null ? null : Rows<float>(refLogps, n, c);
        var stops = Policy.StopTokenIds.ToHashSet();
        var tokenizer = Policy.Processor.Tokenizer;
        return [.. Enumerable.Range(0, n).Select(i =>
        {
            var length = (int)mask[i].Sum();
            var trace = new TokenTrace([.. ids[i].Select(v => (int)v)], [.. ids[i].Select(v => tokenizer.Decode([(int)v]))],
                [.. mask[i].Select(v => v != 0)], logps[i], refs?[i]);
            return new Completion(i / g, i % g, texts[i], length, length > 0 && stops.Contains(ids[i][length - 1]), trace);
        })];
    }

    /// <summary>A [n, c] tensor as n rows of plain values.</summary>
    static T[][] Rows<T>(Tensor t, int n, int c) where T : unmanaged
    {
        using var cpu = t.detach().cpu();
        var flat = cpu.data<T>().ToArray();
        return [.. Enumerable.Range(0, n).Select(i => flat[(i * c)..((i + 1) * c)])];
    }
}

/// <summary>
/// One completion token by token over the rollout's completion width C: what the loss sees. Positions after the first end
/// token are padding (<see cref="Mask"/> false, log-probs 0).
/// </summary>
/// <param name="Ids">Token ids [C].</param>
/// <param name="Texts">Each token decoded on its own (a byte-level token that splits a character shows as U+FFFD).</param>
/// <param name="Mask">True through the first end token (visual-rft-spec §2.1): the tokens the loss averages over.</param>
/// <param name="LogProbs">log π(token) of the sampling policy, log_softmax(logits / T) (TRL), read while sampling.</param>
/// <param name="RefLogProbs">The frozen reference's log-probs (β ≠ 0), else null.</param>
public sealed record TokenTrace(int[] Ids, string[] Texts, bool[] Mask, float[] LogProbs, float[]? RefLogProbs)
{
    public int Width => Ids.Length;

    /// <summary>k3 KL per token of the sampling policy to the reference (<see cref="GrpoLoss.KlK3(float[], float[], bool[])"/>), 0 on
    /// padding; null without a reference.</summary>
    public float[]? Kl { get; } = RefLogProbs is null ? null : GrpoLoss.KlK3(LogProbs, RefLogProbs, Mask);
}

/// <summary>One sampled completion (row Prompt·G + Index of the rollout).</summary>
/// <param name="Prompt">Which prompt of the rollout it answers.</param>
/// <param name="Index">Its place among the prompt's G completions.</param>
/// <param name="Text">Decoded without special tokens, as the official trainer hands it to the rewards (spec §2.1).</param>
/// <param name="Tokens">Tokens through the end token (the loss mask's length).</param>
/// <param name="Finished">False when the completion hit the length limit before an end token.</param>
/// <param name="Trace">The tokens as the loss sees them.</param>
public sealed record Completion(int Prompt, int Index, string Text, int Tokens, bool Finished, TokenTrace Trace)
{
    /// <summary>The <c>&lt;think&gt;</c> block as written, or null (see <see cref="Answers.Blocks"/>).</summary>
    public string? Think => Answers.Blocks(Text).Think;

    /// <summary>The <c>&lt;answer&gt;</c> block as written, or null.</summary>
    public string? Answer => Answers.Blocks(Text).Answer;
}

/// <summary>
/// The result of <c>GrpoTrainer.Rollout</c>: G completions for each of B prompts (row b·G + j), with the prompts' samples
/// (image and ground truth), the coordinate frame the model answers in, and each prompt's image frames (original and
/// resized sizes) so that a box can be drawn over the image whatever its frame.
/// </summary>
/// <param name="Samples">The B prompts' samples: image, problem, solution, ground truth.</param>
/// <param name="G">Completions per prompt.</param>
/// <param name="Completions">B·G completions, prompt by prompt.</param>
/// <param name="AnswerFrame">Qwen2-VL answers in the 0–1000 frame, Qwen2.5-VL in resized-image pixels.</param>
/// <param name="Frames">Per prompt: original and processor-resized image sizes.</param>
/// <param name="GenerateMs">Wall time of encoding and sampling.</param>
/// <param name="ReferenceMs">Wall time of the reference (and old-policy) log-probs.</param>
/// <param name="Handle">What made it: the reward <see cref="Score()"/> applies and the tensors an update needs.</param>
public sealed record RolloutGroup(
    IReadOnlyList<VisualSample> Samples,
    int G,
    IReadOnlyList<Completion> Completions,
    CoordinateFrame AnswerFrame,
    IReadOnlyList<ImageFrames> Frames,
    double GenerateMs,
    double ReferenceMs,
    RolloutHandle Handle)
{
    /// <summary>
    /// A group of hand-written completions for one sample, to score and draw without a model: how a reward treats an
    /// answer, a hack, or a frame mix-up. No token traces (a trainer's rollouts have them).
    /// </summary>
    public static RolloutGroup FromTexts(VisualSample sample, IReadOnlyList<string> completions, TaskReward reward,
        CoordinateFrame answerFrame = CoordinateFrame.Normalized1000)
    {
        if (completions.Count < 2) throw new ArgumentException("a group needs at least two completions (its advantages divide by their std)", nameof(completions));
        TokenTrace none = new([], [], [], [], null);
        var size = new ImageSize(sample.Width, sample.Height);
        return new RolloutGroup([sample], completions.Count, [.. completions.Select((t, j) => new Completion(0, j, t, 0, true, none))],
            answerFrame, [new ImageFrames(size, size)], 0, 0, new RolloutHandle(reward, GrpoOptions.VisualRftPaper.RewardScaling));
    }

    /// <summary>Generated tokens (through the end token) of all completions.</summary>
    public long GeneratedTokens => Completions.Sum(c => (long)c.Tokens);

    /// <summary>The completions of prompt <paramref name="b"/>.</summary>
    public IEnumerable<Completion> Of(int b) => Completions.Where(c => c.Prompt == b);

    /// <summary>Scores every completion with the trainer's reward against its prompt's solution.</summary>
    public ScoredGroup Score() => Score(Handle.Reward);

    /// <summary>Scores with another reward (e.g. the strict preset, to compare).</summary>
    public ScoredGroup Score(TaskReward reward) => ScoredGroup.Of(this, reward);
}
