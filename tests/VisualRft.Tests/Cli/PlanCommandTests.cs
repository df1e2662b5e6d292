using System.CommandLine;
using VisualRft.Cli;
using VisualRft.Models.Qwen2VL;

namespace VisualRft.Tests.Cli;

/// <summary><c>vrft plan</c> on a 2B config.json: the checkpoint's 2,208,985,600 parameters, the full-parameter run refused
/// at 24 GiB (exit 3, naming its parts), the LoRA run fitting there, and a missing folder named.</summary>
public sealed class PlanCommandTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("vrft-plan-").FullName;

    public PlanCommandTests() => File.WriteAllText(Path.Combine(_folder, "config.json"), Qwen2VLConfig.Qwen2VL2B().ToJson().ToJsonString());

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static (int Code, string Out, string Err) Invoke(params string[] args) => Vrft.Invoke(args);

    [Fact]
    public void A_full_2B_run_is_refused_at_24_GiB_and_a_LoRA_run_fits()
    {
        var (code, output, error) = Invoke("plan", "--model", _folder, "--gpu-memory", "24");
        Assert.Equal(3, code);
        Assert.Contains("2,208,985,600 parameters", output);
        Assert.Contains("| reference | 4.11 GiB |", output);   // 2,208,985,600 × 2 bytes: bf16 by default
        Assert.Contains("| master weights | 8.23 GiB |", output);   // × 4: float32 copies of every trained weight
        Assert.StartsWith("vrft plan: needs about", error);
        Assert.Contains("--checkpointing", error);
        Assert.Contains("--lora", error);

        (code, output, _) = Invoke("plan", "--model", _folder, "--dtype", "float32");
        Assert.Contains("| reference | 8.23 GiB |", output);
        Assert.DoesNotContain("master weights | 8", output);

        (code, output, error) = Invoke("plan", "--model", _folder, "--gpu-memory", "24", "--lora", "64");
        Assert.True(code == 0, error);
        Assert.Contains("LoRA r 64", output);
        Assert.Contains("| reference | 0.0 MiB | the base with adapters off (no copy) |", output);
        Assert.Contains("fits 24 GiB", output);
    }

    [Fact]
    public void Checkpointing_shrinks_the_activations_of_the_reference_step()
    {
        static double Activations(string output) => double.Parse(output.Split('\n').Single(l => l.StartsWith("| activations |")).Split('|')[2].Trim().Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture);
        var (_, plain, _) = Invoke("plan", "--model", _folder);
        var (code, checkpointed, error) = Invoke("plan", "--model", _folder, "--checkpointing");
        Assert.True(code == 0, error);
        Assert.Contains("checkpointing", checkpointed);
        Assert.True(Activations(checkpointed) < Activations(plain) / 2, $"{Activations(checkpointed)} vs {Activations(plain)} GiB");
    }

    [Fact]
    public void A_folder_without_config_json_is_named()
    {
        var (code, _, error) = Invoke("plan", "--model", Path.Combine(_folder, "missing"));
        Assert.Equal(2, code);
        Assert.Contains("config.json", error);
        Assert.Equal(1, Invoke("plan", "--g", "0").Code);
    }
}
