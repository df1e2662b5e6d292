using System.CommandLine;
using VisualRft.Models;
using VisualRft.Models.Qwen2VL;
using VisualRft.TinyModel;
using VisualRft.Training;

namespace VisualRft.Cli;

/// <summary><c>vrft plan</c>: the memory a GRPO run of a model folder will hold (<see cref="MemoryPlan"/>), read from its
/// config.json before any weight is loaded; exits 3 when its peak exceeds <c>--gpu-memory</c>.</summary>
public static class PlanCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo?>("--model") { Description = "a Hugging Face model folder (its config.json); default: the shipped tiny model" };
        var lora = new Option<int>("--lora") { Description = "train LoRA adapters of this rank (q_proj, v_proj) instead of every weight; 0: full parameters", DefaultValueFactory = _ => 0 };
        var freeze = new Option<bool>("--freeze-vision") { Description = "keep the vision tower as loaded" };
        var noReference = new Option<bool>("--no-reference") { Description = "β = 0: no reference policy for the KL term" };
        var checkpointing = new Option<bool>("--checkpointing") { Description = "gradient checkpointing: recompute each layer in the backward" };
        var dtype = new Option<string>("--dtype") { Description = "weights' dtype: bfloat16 (trained on float32 master weights) or float32", DefaultValueFactory = _ => "bfloat16" };
        dtype.AcceptOnlyFromAmong("bfloat16", "float32");
        var g = new Option<int>("--g") { Description = "completions per prompt (G)", DefaultValueFactory = _ => 8 };
        var prompts = new Option<int>("--prompts") { Description = "prompts sampled together", DefaultValueFactory = _ => 1 };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "prompt tokens, image tokens included (448 × 448 = 256, plus the text)", DefaultValueFactory = _ => 316 };
        var newTokens = new Option<int>("--max-new-tokens") { Description = "new tokens per completion", DefaultValueFactory = _ => 256 };
        var gpu = new Option<double>("--gpu-memory") { Description = "GiB the run may use", DefaultValueFactory = _ => 80 };
        var cmd = new Command("plan", "The memory a GRPO run will hold, before loading anything (activations estimated)")
            { model, lora, freeze, noReference, checkpointing, dtype, g, prompts, promptTokens, newTokens, gpu };
        cmd.SetAction(parse =>
        {
            var options = new MemoryPlanOptions
            {
                NumGenerations = OptionChecks.InRange(parse, g, 1, 4096),
                Prompts = OptionChecks.InRange(parse, prompts, 1, 4096),
                PromptTokens = OptionChecks.InRange(parse, promptTokens, 1, 1 << 20),
                MaxNewTokens = OptionChecks.InRange(parse, newTokens, 1, 1 << 20),
                Lora = OptionChecks.InRange(parse, lora, 0, 65536) is > 0 and var r ? new LoraConfig { R = r, Alpha = 2 * r } : null,
                FreezeVisionTower = parse.GetValue(freeze),
                Reference = !parse.GetValue(noReference),
                GradientCheckpointing = parse.GetValue(checkpointing),
                DType = parse.GetValue(dtype) == "float32" ? TorchSharp.torch.ScalarType.Float32 : TorchSharp.torch.ScalarType.BFloat16,
            };
            var gib = OptionChecks.FinitePositive(parse, gpu);
            var folder = parse.GetValue(model)?.FullName ?? TinyQwen2Vl.ExtractedFolder();
            var config = Qwen2VLConfig.Load(Path.Combine(folder, "config.json"));
            var plan = MemoryPlan.For(config, options);
            var o = parse.InvocationConfiguration.Output;
            o.WriteLine($"{config.ModelType} from {folder}: G = {options.NumGenerations} × {options.Prompts} prompt(s), "
                        + $"{options.PromptTokens} + {options.MaxNewTokens} tokens{(options.Lora is { } l ? $", LoRA r {l.R}" : "")}{(options.FreezeVisionTower ? ", vision tower frozen" : "")}"
                        + $"{(options.GradientCheckpointing ? ", checkpointing" : "")}");
            o.Write(plan.ToString());
            if (plan.Refusal(gib) is { } why)
            {
                parse.InvocationConfiguration.Error.WriteLine($"vrft plan: {why}");
                return VrftCommandLine.ExitCodes.Resources;
            }
            o.WriteLine($"fits {gib:0.#} GiB");
            return 0;
        });
        return cmd;
    }
}
