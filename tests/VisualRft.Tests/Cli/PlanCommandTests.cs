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
        Assert.Contains("| reference | 8.23 GiB |", output);   // 2,208,985,600 × 4 bytes
        Assert.StartsWith("vrft plan: needs at least", error);
        Assert.Contains("--lora", error);

        (code, output, error) = Invoke("plan", "--model", _folder, "--gpu-memory", "24", "--lora", "64");
        Assert.True(code == 0, error);
        Assert.Contains("LoRA r 64", output);
        Assert.Contains("| reference | 0.0 MiB | the base with adapters off (no copy) |", output);
        Assert.Contains("fits 24 GiB before activations", output);
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
