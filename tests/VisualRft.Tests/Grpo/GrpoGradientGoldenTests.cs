using System.Text.Json;
using TorchSharp;
using VisualRft.Grpo;
using VisualRft.Models.Qwen2VL;
using VisualRft.Policy;
using VisualRft.Tests.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace VisualRft.Tests.Grpo;

/// <summary>
/// The model and the loss together: gradients of the grpo loss with respect to the watched parameters (make_golden.py,
/// "GRPO loss reference") for both models and both scenarios, through the model's per-token log-probs.
/// </summary>
[Trait("Category", "Golden")]
public class GrpoGradientGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Scenarios => new()
    {
        { "qwen2_vl", "on_policy" }, { "qwen2_vl", "off_policy" }, { "qwen2_5_vl", "on_policy" }, { "qwen2_5_vl", "off_policy" },
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Loss_gradients_match_the_reference(string kind, string scenario)
    {
        using var scope = NewDisposeScope();
        using var model = Qwen2VLGoldenTests.LoadCase(kind, "model.safetensors");
        var proc = Qwen2VLGoldenTests.Fixture(kind, "processor.safetensors");
        var refs = Qwen2VLGoldenTests.Fixture(kind, "reference.safetensors");
        var grpo = Qwen2VLGoldenTests.Fixture(kind, "grpo.safetensors");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Golden.Dir, "manifest.json")));
        var m = doc.RootElement.GetProperty("cases").GetProperty(kind).GetProperty("grpo");
        var options = new GrpoOptions
        {
            NumGenerations = m.GetProperty("G").GetInt32(), Beta = m.GetProperty("beta").GetDouble(),
            EpsilonLow = m.GetProperty("epsilon_low").GetDouble(), EpsilonHigh = m.GetProperty("epsilon_high").GetDouble(),
            MaxCompletionLength = m.GetProperty("max_completion_length").GetInt32(), GradientAccumulation = 1,
        };
        // The fixture's group goes through the trainer's own update pass (GrpoTrainer.PolicyLoss): per-prompt image
        // encoding, rows repeated for the G samples, completion log-probs, then GrpoLoss.
        var ids = refs["input_ids_A"].unsqueeze(0);
        RolloutTensors Group(Tensor? old) => new(new PromptTensors(model, ids, torch.ones_like(ids),
            [new PromptImage(proc["pixel_values_A"], proc["grid_thw_A"], model.EncodeImages(proc["pixel_values_A"], proc["grid_thw_A"]))], []),
            grpo["completion_ids"], grpo["completion_mask"], grpo["ref_logps"], old);
        Tensor? old = null;
        if (scenario == "off_policy")
            using (torch.no_grad()) old = GrpoTrainer.PolicyLoss(model, Group(null), grpo["advantages"], options, 1, null).LogProbs + grpo["old_logps_delta"];
        model.zero_grad();
        var (result, _) = GrpoTrainer.PolicyLoss(model, Group(old), grpo["advantages"], options, 1, null);
        result.Loss.backward();
        var expectedLoss = m.GetProperty("losses").GetProperty(scenario).GetProperty("grpo").GetDouble();
        Assert.Equal(expectedLoss, result.LossValue, 5);

        var own = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var prefix = scenario + "_grad::";
        var watched = grpo.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(watched);
        foreach (var key in watched)
        {
            var name = Qwen2VLForConditionalGeneration.NormalizeKey(key[prefix.Length..]);
            var expected = grpo[key];
            var actual = own[name].grad ?? throw new Xunit.Sdk.XunitException($"{name} has no gradient");
            var err = (actual - expected).abs().max().item<float>() / Math.Max(1e-12, expected.norm().item<float>());
            output.WriteLine($"{kind} {scenario} {name}: max |Δ| / ‖ref‖ = {err:E2}");
            Assert.True(err < 1e-4, $"{name}: gradient differs by {err:E2} of its norm");
        }
        var norm = Math.Sqrt(model.parameters().Where(p => p.grad is not null).Sum(p => p.grad!.pow(2).sum().item<float>()));
        var expectedNorm = m.GetProperty("losses").GetProperty(scenario).GetProperty("grad_norm_of_grpo_loss").GetDouble();
        output.WriteLine($"{kind} {scenario}: grad norm {norm:F6} vs {expectedNorm:F6}");
        Assert.True(Math.Abs(norm - expectedNorm) / expectedNorm < 1e-4, $"gradient norm {norm} vs {expectedNorm}");
    }
}
