using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using VisualRft.Data;
using VisualRft.Rewards;
using VisualRft.Views;

namespace VisualRft.Interop;

/// <summary>The engines a data set can be exported for (<c>vrft export verl|easyr1|trl</c>).</summary>
public enum Engine { Verl, EasyR1, Trl }

/// <summary>What <c>EngineExport.Write</c> wrote.</summary>
public sealed record ExportResult(Engine Engine, string Folder, IReadOnlyList<string> Files, int TrainRows, int TestRows);

/// <summary>
/// A data set in the layout each engine's Qwen2-VL recipe reads, with a config that maps the paper's hyper-parameters
/// onto the engine's keys. Images are PNG files in the Hugging Face Image struct <c>{bytes, path}</c>; the ground truth
/// is <c>{"solution": ..., "image_size": [w, h]}</c> as JSON text (the solution is in the frame the prompt asks for;
/// the size lets a reward or a view convert frames), which the interop shims read (<c>solution_of</c>);
/// <c>data_source</c> is <c>visualrft/&lt;dataset&gt;</c> and <c>extra_info</c> carries the task and preset the shims
/// score with.
/// </summary>
public static class EngineExport
{
    /// <summary>Writes train.parquet, test.parquet and the engine's config into <paramref name="folder"/>.</summary>
    public static ExportResult Write(Engine engine, string datasetName, SyntheticDataset data, string folder, RewardPreset preset = RewardPreset.VisualRft) =>
        Write(engine, datasetName, data.Train, data.Test, folder, preset);

    /// <summary>The same for any samples, e.g. a downloaded data set's (<see cref="PaperSamples.FromHfRows"/>).</summary>
    public static ExportResult Write(Engine engine, string datasetName, IReadOnlyList<VisualSample> train, IReadOnlyList<VisualSample> test,
        string folder, RewardPreset preset = RewardPreset.VisualRft)
    {
        if (train.Count == 0) throw new ArgumentException($"{datasetName} has no training samples to export", nameof(train));
        if (train.Concat(test).Select(s => s.Task).Distinct().Count() > 1) throw new ArgumentException($"{datasetName} mixes tasks; export one task at a time", nameof(train));
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        foreach (var (split, samples) in new[] { ("train", train), ("test", test) })
        {
            var path = Path.Combine(folder, split + ".parquet");
            WriteParquet(engine, datasetName, split, samples, preset, path);
            files.Add(path);
        }
        var config = Path.Combine(folder, engine switch { Engine.Verl => "verl-grpo.sh", Engine.EasyR1 => "easyr1-config.yaml", _ => "trl-grpo.yaml" });
        IO.AtomicFile.WriteAllText(config, Config(engine, Path.GetFullPath(folder), train[0].Task));
        files.Add(config);
        return new ExportResult(engine, folder, files, train.Count, test.Count);
    }

    public static string DataSource(string datasetName) => "visualrft/" + datasetName;

    /// <summary>The ground truth text: the solution and the image size of its coordinate frame.</summary>
    public static string GroundTruth(VisualSample s) =>
        JsonSerializer.Serialize(new GroundTruthJson { Solution = s.Solution, ImageSize = [s.Width, s.Height] });

    static void WriteParquet(Engine engine, string name, string split, IReadOnlyList<VisualSample> samples, RewardPreset preset, string path)
    {
        var tmp = path + ".tmp";
        using (var stream = File.Create(tmp))
        {
            var task = engine switch
            {
                Engine.Verl => ParquetSerializer.SerializeAsync(samples.Select((s, i) => VerlRow.Of(s, name, split, i, preset)), stream),
                Engine.EasyR1 => ParquetSerializer.SerializeAsync(samples.Select(EasyR1Row.Of), stream),
                _ => ParquetSerializer.SerializeAsync(samples.Select((s, i) => TrlRow.Of(s, name, split, i, preset)), stream),
            };
            task.GetAwaiter().GetResult();
        }
        File.Move(tmp, path, overwrite: true);
    }

    sealed class GroundTruthJson
    {
        [JsonPropertyName("solution")] public string Solution { get; set; } = "";
        [JsonPropertyName("image_size")] public int[] ImageSize { get; set; } = [];
    }

    /// <summary>The Hugging Face <c>datasets</c> Image feature as parquet stores it.</summary>
    public sealed class ImageCell
    {
        [JsonPropertyName("bytes")] public byte[] Bytes { get; set; } = [];
        [JsonPropertyName("path")] public string? Path { get; set; }

        public static ImageCell Of(VisualSample s) => new() { Bytes = Png.Bytes(s.Image), Path = s.Id + ".png" };
    }

    public sealed class ChatMessage
    {
        [JsonPropertyName("role")] public string Role { get; set; } = "";
        [JsonPropertyName("content")] public string Content { get; set; } = "";
    }

    public sealed class ExtraInfo
    {
        [JsonPropertyName("split")] public string Split { get; set; } = "";
        [JsonPropertyName("index")] public long Index { get; set; }
        [JsonPropertyName("id")] public string Id { get; set; } = "";
        [JsonPropertyName("task")] public string Task { get; set; } = "";
        [JsonPropertyName("preset")] public string Preset { get; set; } = "";
        [JsonPropertyName("image_width")] public int ImageWidth { get; set; }
        [JsonPropertyName("image_height")] public int ImageHeight { get; set; }

        public static ExtraInfo Of(VisualSample s, string split, int index, RewardPreset preset) => new()
        {
            Split = split, Index = index, Id = s.Id, Task = EnumNames.Of(s.Task), Preset = EnumNames.Of(preset), ImageWidth = s.Width, ImageHeight = s.Height,
        };
    }

    public sealed class RewardModel
    {
        [JsonPropertyName("style")] public string Style { get; set; } = "rule";
        [JsonPropertyName("ground_truth")] public string GroundTruth { get; set; } = "";
    }

    /// <summary>verl's multimodal layout, as its examples/data_preprocess/geo3k.py writes it: <c>data_source</c>,
    /// <c>prompt</c> (chat messages; <c>&lt;image&gt;</c> marks where RLHFDataset puts the image), <c>images</c>,
    /// <c>ability</c>, <c>reward_model {style, ground_truth}</c>, <c>extra_info</c>.</summary>
    public sealed class VerlRow
    {
        [JsonPropertyName("data_source")] public string DataSource { get; set; } = "";
        [JsonPropertyName("prompt")] public List<ChatMessage> Prompt { get; set; } = [];
        [JsonPropertyName("images")] public List<ImageCell> Images { get; set; } = [];
        [JsonPropertyName("ability")] public string Ability { get; set; } = "";
        [JsonPropertyName("reward_model")] public RewardModel RewardModel { get; set; } = new();
        [JsonPropertyName("extra_info")] public ExtraInfo ExtraInfo { get; set; } = new();

        public static VerlRow Of(VisualSample s, string name, string split, int index, RewardPreset preset) => new()
        {
            DataSource = EngineExport.DataSource(name),
            Prompt = [new() { Role = "user", Content = "<image>" + s.Problem }],
            Images = [ImageCell.Of(s)],
            Ability = EnumNames.Of(s.Task),
            RewardModel = new() { GroundTruth = GroundTruth(s) },
            ExtraInfo = ExtraInfo.Of(s, split, index, preset),
        };
    }

    /// <summary>EasyR1's layout (its geometry3k data and <c>data.prompt_key=problem</c>, <c>answer_key=answer</c>,
    /// <c>image_key=images</c>): the prompt with <c>&lt;image&gt;</c>, the answer (here the ground truth text), the images.</summary>
    public sealed class EasyR1Row
    {
        [JsonPropertyName("problem")] public string Problem { get; set; } = "";
        [JsonPropertyName("answer")] public string Answer { get; set; } = "";
        [JsonPropertyName("images")] public List<ImageCell> Images { get; set; } = [];

        public static EasyR1Row Of(VisualSample s) => new() { Problem = "<image>" + s.Problem, Answer = GroundTruth(s), Images = [ImageCell.Of(s)] };
    }

    public sealed class ContentPart
    {
        [JsonPropertyName("type")] public string Type { get; set; } = "";
        [JsonPropertyName("text")] public string? Text { get; set; }
    }

    public sealed class TrlMessage
    {
        [JsonPropertyName("role")] public string Role { get; set; } = "";
        [JsonPropertyName("content")] public List<ContentPart> Content { get; set; } = [];
    }

    /// <summary>TRL's conversational vision layout for GRPOTrainer: <c>prompt</c> (messages whose content is a list of
    /// <c>{"type": "image"}</c> and <c>{"type": "text", "text": ...}</c>), <c>image</c>; plus Visual-RFT's own columns
    /// <c>problem</c> and <c>solution</c> (the official trainer's dataset), <c>data_source</c> and <c>extra_info</c>,
    /// which GRPOTrainer passes to the reward functions as keyword arguments.</summary>
    public sealed class TrlRow
    {
        [JsonPropertyName("prompt")] public List<TrlMessage> Prompt { get; set; } = [];
        [JsonPropertyName("image")] public ImageCell Image { get; set; } = new();
        [JsonPropertyName("problem")] public string Problem { get; set; } = "";
        [JsonPropertyName("solution")] public string Solution { get; set; } = "";
        [JsonPropertyName("data_source")] public string DataSource { get; set; } = "";
        [JsonPropertyName("extra_info")] public ExtraInfo ExtraInfo { get; set; } = new();

        public static TrlRow Of(VisualSample s, string name, string split, int index, RewardPreset preset) => new()
        {
            Prompt = [new() { Role = "user", Content = [new() { Type = "image" }, new() { Type = "text", Text = s.Problem }] }],
            Image = ImageCell.Of(s),
            Problem = s.Problem,
            Solution = s.Solution,
            DataSource = EngineExport.DataSource(name),
            ExtraInfo = ExtraInfo.Of(s, split, index, preset),
        };
    }

    /// <summary>The engine's config: the paper's GRPO settings (visual-rft-spec.md: G = 8, β = 0.04 with the k3 KL, lr 1e-6,
    /// 256 new tokens, T = 1, loss averaged per sequence) on the engine's keys, each with what differs from the official
    /// trainer (TRL's GRPOTrainer of early 2025, which Visual-RFT forked).</summary>
    static string Config(Engine engine, string folder, VisualTask task)
    {
        string t = EnumNames.Of(task);
        var c = new StringBuilder();
        switch (engine)
        {
            case Engine.Verl:
                c.AppendLine($$"""
                    #!/usr/bin/env bash
                    # verl GRPO with the paper's settings on this export (written by vrft export verl). Keys of
                    # verl/trainer/config/ppo_trainer.yaml; set VRFT_REWARD_URL to a running `vrft serve-rewards` or put vrft on PATH.
                    set -euo pipefail
                    INTEROP="${INTEROP:-$(vrft info | sed -n 's/^reward shims for verl, EasyR1, TRL: //p')}"
                    args=(
                      algorithm.adv_estimator=grpo                     # group-relative advantages, as the paper
                      algorithm.norm_adv_by_std_in_grpo=true           # (r - mean) / (std + eps): verl's eps is 1e-6, the official 1e-4
                      algorithm.use_kl_in_reward=false                 # KL as a loss term, not a reward penalty (as the official)
                      actor_rollout_ref.rollout.n=8                    # G = 8 completions per prompt
                      actor_rollout_ref.rollout.temperature=1.0        # T = 1
                      data.max_response_length=256                     # 256 new tokens
                      data.max_prompt_length=1024                      # the official trainer does not cut prompts; raise it for large images
                      actor_rollout_ref.actor.optim.lr=1e-6            # lr 1e-6; verl's AdamW default betas/eps, the official uses HF Trainer's
                      actor_rollout_ref.actor.use_kl_loss=true         # beta * KL in the loss
                      actor_rollout_ref.actor.kl_loss_coef=0.04        # beta = 0.04
                      actor_rollout_ref.actor.kl_loss_type=low_var_kl  # k3 = exp(ref - pi) - (ref - pi) - 1; verl clamps it to [-10, 10], the official does not
                      actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean  # mean over each completion's tokens, then over completions (the official loss)
                      actor_rollout_ref.actor.ppo_epochs=1             # one update per rollout batch: the ratio is 1 and clipping never acts, as in the official
                      actor_rollout_ref.actor.entropy_coeff=0          # no entropy bonus
                      data.train_files={{folder}}/train.parquet
                      data.val_files={{folder}}/test.parquet
                      data.image_key=images
                      reward.custom_reward_function.path="$INTEROP/verl/visualrft_reward.py"   # task and preset from extra_info ({{t}})
                      reward.custom_reward_function.name=compute_score
                      trainer.rollout_data_dir=rollouts                # {step}.jsonl per step: `vrft rollouts rollouts --format verl` draws them
                    )
                    python3 -m verl.trainer.main_ppo "${args[@]}" actor_rollout_ref.model.path="${MODEL:-Qwen/Qwen2-VL-2B-Instruct}" "$@"
                    """);
                break;
            case Engine.EasyR1:
                c.AppendLine($$"""
                    # EasyR1 config for this export (written by vrft export easyr1): python3 -m verl.trainer.main config=easyr1-config.yaml
                    # Keys of EasyR1's examples/config.yaml; unlisted keys keep EasyR1's defaults.
                    data:
                      train_files: {{folder}}/train.parquet
                      val_files: {{folder}}/test.parquet
                      prompt_key: problem
                      answer_key: answer          # the ground truth JSON text {"solution", "image_size"}; the shim reads the solution
                      image_key: images
                      format_prompt: null         # the Visual-RFT prompt is already in `problem`
                      max_response_length: 256    # 256 new tokens
                    algorithm:
                      adv_estimator: grpo         # group-relative advantages; EasyR1's std eps is 1e-6, the official 1e-4
                      disable_kl: false
                      use_kl_loss: true           # beta * KL in the loss, not in the reward (as the official)
                      kl_penalty: low_var_kl      # k3; EasyR1 clamps it to [-10, 10], the official does not
                      kl_coef: 0.04               # beta = 0.04
                    worker:
                      actor:
                        optim:
                          lr: 1.0e-6              # lr 1e-6
                        loss_avg_mode: seq        # mean over each completion's tokens, then over completions (the official loss)
                        ppo_epochs: 1             # one update per rollout batch: clipping never acts, as in the official
                      rollout:
                        n: 8                      # G = 8
                        temperature: 1.0          # T = 1
                      reward:
                        reward_function: ./interop/easyr1/visualrft_reward.py:compute_score   # path from `vrft info`
                        reward_function_kwargs: {task: {{t}}, preset: visual-rft}            # EasyR1 passes no extra info
                    trainer:
                      logger: [file]              # experiment_log.jsonl; generations.log holds the validation samples
                    """);
                break;
            default:
                c.AppendLine($$"""
                    # TRL GRPOConfig for this export (written by vrft export trl). In Python:
                    #   sys.path.insert(0, "<vrft info's interop folder>/trl"); import visualrft_rewards
                    #   GRPOTrainer(model, reward_funcs=visualrft_rewards.reward_funcs("{{t}}"), args=GRPOConfig(**yaml),
                    #               train_dataset=load_dataset("parquet", data_files="{{folder}}/train.parquet")["train"])
                    num_generations: 8             # G = 8
                    temperature: 1.0               # T = 1
                    max_completion_length: 256     # 256 new tokens
                    learning_rate: 1.0e-6          # lr 1e-6
                    beta: 0.04                     # beta = 0.04; TRL's KL is k3 as in the official (its fork of this trainer)
                    loss_type: grpo                # per-sequence mean then mean over completions: the official loss (TRL's default is now dapo)
                    scale_rewards: group           # (r - mean) / (std + 1e-4) per group, as the official
                    num_iterations: 1              # one update per generation: the ratio is 1 and epsilon never clips, as in the official
                    log_completions: true          # completions/completions_{step:05d}.parquet: `vrft rollouts DIR --format trl` draws them
                    remove_unused_columns: false   # keep solution, extra_info and data_source for the reward functions
                    """);
                break;
        }
        return c.ToString();
    }
}
