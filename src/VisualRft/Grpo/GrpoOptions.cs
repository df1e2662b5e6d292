using System.Text.Json;
using System.Text.Json.Serialization;
using VisualRft.Training;

namespace VisualRft.Grpo;

/// <summary>How the masked per-token losses of a micro-batch become one number (TRL <c>loss_type</c>).</summary>
public enum LossType
{
    /// <summary>Per-sequence token mean, then mean over sequences: the original GRPO and the Visual-RFT trainer (spec §2.1).</summary>
    Grpo,
    /// <summary>Masked sum / active tokens of the micro-batch (TRL default v0.17–v0.21).</summary>
    Bnpo,
    /// <summary>Masked sum / (sequences · max_completion_length): Dr. GRPO (arXiv 2503.20783), no length bias.</summary>
    DrGrpo,
    /// <summary>Masked sum / active tokens of the whole accumulated batch: DAPO (arXiv 2503.14476), TRL default since v0.22.</summary>
    Dapo,
}

/// <summary>What divides the group-centred rewards (TRL <c>scale_rewards</c>).</summary>
public enum RewardScaling
{
    /// <summary>The group's unbiased std + 1e-4 (Visual-RFT, TRL default).</summary>
    Group,
    /// <summary>The whole batch's unbiased std + 1e-4 (PPO Lite, arXiv 2508.08221); the mean stays per group.</summary>
    Batch,
    /// <summary>No division (Dr. GRPO: scaling by the std adds a question-difficulty bias).</summary>
    None,
}

/// <summary>
/// Every knob of Visual-RFT's GRPO. The defaults of the record are the paper's (<see cref="VisualRftPaper"/>); each
/// property names its source: the spec (<c>visual-rft-spec.md</c>), TRL's <c>GRPOConfig</c> or HF <c>TrainingArguments</c>.
/// Call <see cref="Validate"/> (done by the consumers) to get one clear error per bad value.
/// </summary>
public sealed record GrpoOptions : ICheckpointOptions<GrpoOptions>
{
    // ---- group and batch --------------------------------------------------------------------------------------

    /// <summary>G, completions sampled per prompt. 8 for the 2B scripts (4 for 7B) — spec §2.3; TRL default 8.</summary>
    public int NumGenerations { get; init; } = 8;

    /// <summary>Prompts per micro-batch (HF <c>per_device_train_batch_size</c>): 1 in every script — spec §2.3.</summary>
    public int PromptsPerMicroBatch { get; init; } = 1;

    /// <summary>
    /// Micro-batches per optimizer step: 2 in the scripts — spec §2.3. The paper ran 8 GPUs, so one of its optimizer
    /// steps saw 16 prompts; set 16 here (with one prompt per micro-batch) to match that effective batch on one device.
    /// </summary>
    public int GradientAccumulation { get; init; } = 2;

    /// <summary>Prompts per optimizer step on this device: <see cref="PromptsPerMicroBatch"/> · <see cref="GradientAccumulation"/>.</summary>
    [JsonIgnore] public int PromptsPerStep => PromptsPerMicroBatch * GradientAccumulation;

    // ---- objective --------------------------------------------------------------------------------------------

    /// <summary>Loss reduction. Visual-RFT: per-sequence mean (<see cref="LossType.Grpo"/>) — spec §2.1.</summary>
    public LossType LossType { get; init; } = LossType.Grpo;

    /// <summary>Advantage scaling. Visual-RFT: (r − mean_g)/(std_g + 1e-4) — spec §2.1.</summary>
    public RewardScaling RewardScaling { get; init; } = RewardScaling.Group;

    /// <summary>β, weight of the k3 KL to the frozen reference. 0.04 (TRL default ≤ v0.18, used by the paper) — spec §2.3.
    /// 0 drops the reference model entirely.</summary>
    public double Beta { get; init; } = 0.04;

    /// <summary>μ, policy updates per generated batch (TRL <c>num_iterations</c>). The Visual-RFT trainer does one — spec §2.1.</summary>
    public int Mu { get; init; } = 1;

    /// <summary>Lower clip ε (TRL <c>epsilon</c>, 0.2). With μ = 1 the ratio is exactly 1, so clipping never acts — spec §2.1.</summary>
    public double EpsilonLow { get; init; } = 0.2;

    /// <summary>Upper clip ε (TRL <c>epsilon_high</c>; unset in TRL means = <see cref="EpsilonLow"/>). DAPO recommends 0.28.</summary>
    public double EpsilonHigh { get; init; } = 0.2;

    // ---- optimizer --------------------------------------------------------------------------------------------

    /// <summary>Peak AdamW learning rate. 1e-6 (TRL default, confirmed by a user log) — spec §2.3.</summary>
    public double LearningRate { get; init; } = 1e-6;

    /// <summary>Schedule. HF Trainer default: linear decay to 0 — spec §2.3.</summary>
    public LrSchedule LrSchedule { get; init; } = LrSchedule.Linear;

    /// <summary>Warm-up optimizer steps. 0 (HF default; lr 9.6e-7 logged at step 1 of 25) — spec §2.3.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>AdamW decoupled weight decay. 0 (HF <c>TrainingArguments</c> default) — spec §2.3.</summary>
    public double WeightDecay { get; init; }

    /// <summary>AdamW β1, β2, ε: HF defaults 0.9 / 0.999 / 1e-8 — spec §2.3.</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary>Global gradient-norm clip (HF <c>max_grad_norm</c>) 1.0 — spec §2.3. 0 disables clipping (the norm is still measured).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    // ---- sampling ---------------------------------------------------------------------------------------------

    /// <summary>Rollout temperature: 1.0, hard-coded in the Visual-RFT trainer — spec §2.2.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Top-k: 50, the HF <c>GenerationConfig</c> default that the trainer inherits — spec §2.2. 0 disables it.</summary>
    public int TopK { get; init; } = 50;

    /// <summary>Top-p (nucleus): 1.0, i.e. off — spec §2.2.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Maximum new tokens per completion (TRL <c>max_completion_length</c>): 256 — spec §2.2. Also the
    /// constant of the <see cref="LossType.DrGrpo"/> normaliser.</summary>
    public int MaxCompletionLength { get; init; } = 256;

    /// <summary>Prompt tokens kept (the last ones): 1024 in the scripts — spec §2.3.</summary>
    public int MaxPromptLength { get; init; } = 1024;

    /// <summary>Seed of every random draw (HF default 42) — spec §2.3.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Train the decoder only and keep the vision tower as loaded (verl's <c>actor.freeze_vision_tower</c>): less
    /// memory and compute per step. The official code trains everything, so the paper's preset keeps it off.</summary>
    public bool FreezeVisionTower { get; init; }

    /// <summary>Recompute each decoder layer's and vision block's activations in the backward (HF
    /// <c>gradient_checkpointing</c>; <see cref="Models.Qwen2VL.Qwen2VLForConditionalGeneration.GradientCheckpointing"/>): the
    /// update's activation memory drops to about one layer's, for one more forward. False in the 2B detection scripts,
    /// true in the LISA one — spec §2.3.</summary>
    public bool GradientCheckpointing { get; init; }

    // ---- presets ----------------------------------------------------------------------------------------------

    /// <summary>The objective of the official Visual-RFT trainer (spec §2, DESIGN.md "Key decisions").</summary>
    public static GrpoOptions VisualRftPaper { get; } = new();

    /// <summary>
    /// Today's TRL <c>GRPOConfig</c> (v1.9, anchors.md §A.1) on one device: loss <c>dapo</c>, β = 0, ε 0.2 / 0.28 (the
    /// project's preset uses DAPO's 0.28; TRL itself leaves <c>epsilon_high</c> = <c>epsilon</c> unless set), scale by
    /// group, top-k off, HF <c>TrainingArguments</c> gradient accumulation 1.
    /// </summary>
    public static GrpoOptions TrlDefaults { get; } = new()
    {
        LossType = LossType.Dapo, Beta = 0.0, EpsilonLow = 0.2, EpsilonHigh = 0.28, RewardScaling = RewardScaling.Group,
        GradientAccumulation = 1, TopK = 0,
    };

    /// <summary>The optimizer knobs above, in the form both trainers' optimizer takes.</summary>
    [JsonIgnore] public OptimizerOptions Optimizer => new()
    {
        LearningRate = LearningRate, LrSchedule = LrSchedule, WarmupSteps = WarmupSteps, WeightDecay = WeightDecay,
        AdamBeta1 = AdamBeta1, AdamBeta2 = AdamBeta2, AdamEpsilon = AdamEpsilon, MaxGradNorm = MaxGradNorm,
        GradientAccumulation = GradientAccumulation,
    };

    /// <summary>The reference model is needed only when the KL term is on.</summary>
    [JsonIgnore] public bool UsesReference => Beta != 0.0;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid knob and its value.</summary>
    public GrpoOptions Validate()
    {
        void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"GrpoOptions.{name} = {value} is invalid: {rule}", name);
        }
        Check(NumGenerations >= 2, nameof(NumGenerations), NumGenerations, "a group needs at least 2 completions (the std of one sample is undefined)");
        Check(PromptsPerMicroBatch >= 1, nameof(PromptsPerMicroBatch), PromptsPerMicroBatch, "must be >= 1");
        Check(Enum.IsDefined(LossType), nameof(LossType), LossType, "unknown loss type");
        Check(Enum.IsDefined(RewardScaling), nameof(RewardScaling), RewardScaling, "unknown reward scaling");
        Check(double.IsFinite(Beta) && Beta >= 0, nameof(Beta), Beta, "must be finite and >= 0");
        Check(Mu >= 1, nameof(Mu), Mu, "must be >= 1");
        Check(double.IsFinite(EpsilonLow) && EpsilonLow >= 0 && EpsilonLow < 1, nameof(EpsilonLow), EpsilonLow, "must be in [0, 1) so that 1 − ε > 0");
        Check(double.IsFinite(EpsilonHigh) && EpsilonHigh >= 0, nameof(EpsilonHigh), EpsilonHigh, "must be finite and >= 0");
        Check(double.IsFinite(Temperature) && Temperature > 0, nameof(Temperature), Temperature, "must be finite and > 0");
        Check(TopK >= 0, nameof(TopK), TopK, "must be >= 0 (0 = off)");
        Check(TopP is > 0 and <= 1, nameof(TopP), TopP, "must be in (0, 1]");
        Check(MaxCompletionLength >= 1, nameof(MaxCompletionLength), MaxCompletionLength, "must be >= 1");
        Check(MaxPromptLength >= 1, nameof(MaxPromptLength), MaxPromptLength, "must be >= 1");
        try { Optimizer.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"GrpoOptions.{e.Message}", e.ParamName, e); }
        return this;
    }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Indented JSON with enum names (checkpoints store it beside the weights).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses <see cref="ToJson"/>'s output; unknown keys and bad values are errors naming <paramref name="source"/>.</summary>
    public static GrpoOptions FromJson(string json, string source = "options")
    {
        try
        {
            return (JsonSerializer.Deserialize<GrpoOptions>(json, Json) ?? throw new InvalidDataException($"{source}: GrpoOptions JSON is null")).Validate();
        }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid GrpoOptions JSON: {e.Message}", e); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }
}
