using System.Text.Json;
using TorchSharp;
using VisualRft.Grpo;
using VisualRft.IO;
using VisualRft.Torch;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace VisualRft.Tests.Grpo;

/// <summary>
/// The GRPO numbers of fixtures/hf-golden (make_golden.py, "GRPO loss reference"): advantages from the rewards, the
/// k3 KL and the grpo/bnpo/dr_grpo losses of both scenarios, from the stored policy and reference log-probs.
/// </summary>
[Trait("Category", "Golden")]
public class GrpoGoldenTests(ITestOutputHelper output)
{
    static GrpoGoldenTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Cases => new() { "qwen2_vl", "qwen2_5_vl" };

    public static TheoryData<string, string> Scenarios => new()
    {
        { "qwen2_vl", "on_policy" }, { "qwen2_vl", "off_policy" }, { "qwen2_5_vl", "on_policy" }, { "qwen2_5_vl", "off_policy" },
    };

    static Dictionary<string, Tensor> Fixture(string kase) => SafeTensors.Load(Path.Combine(Golden.Dir, kase, "grpo.safetensors"));

    static JsonElement Manifest(string kase)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Golden.Dir, "manifest.json")));
        return doc.RootElement.GetProperty("cases").GetProperty(kase).GetProperty("grpo").Clone();
    }

    /// <summary>The fixture's settings: β 0.04, ε 0.2/0.28, G 4, completions of at most 8 tokens, no accumulation.</summary>
    static GrpoOptions Options(JsonElement m, LossType loss) => new GrpoOptions
    {
        NumGenerations = m.GetProperty("G").GetInt32(), Beta = m.GetProperty("beta").GetDouble(),
        EpsilonLow = m.GetProperty("epsilon_low").GetDouble(), EpsilonHigh = m.GetProperty("epsilon_high").GetDouble(),
        MaxCompletionLength = m.GetProperty("max_completion_length").GetInt32(), LossType = loss, GradientAccumulation = 1,
    }.Validate();

    static double MaxAbs(Tensor a, Tensor b) => (a - b).abs().max().to_type(ScalarType.Float64).item<double>();

    [Theory, MemberData(nameof(Cases))]
    public void Advantages_match_the_fixture(string kase)
    {
        using var scope = NewDisposeScope();
        var f = Fixture(kase);
        using var adv = GrpoLoss.Advantages(f["rewards"], Manifest(kase).GetProperty("G").GetInt32());
        output.WriteLine($"{kase} advantages max |Δ| = {MaxAbs(adv.Advantages, f["advantages"]):E2}");
        Assert.True(MaxAbs(adv.Advantages, f["advantages"]) < 1e-6, $"advantages differ by {MaxAbs(adv.Advantages, f["advantages"])}");
        Assert.Equal([false], adv.ZeroStdGroups);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Plain_advantages_match_the_fixture(string kase)
    {
        using var scope = NewDisposeScope();
        var f = Fixture(kase);
        var rewards = f["rewards"].to_type(ScalarType.Float64).data<double>().ToArray();
        var expected = f["advantages"].to_type(ScalarType.Float64).data<double>().ToArray();
        var (advantages, _, _, zero) = GroupAdvantages.Of(rewards, Manifest(kase).GetProperty("G").GetInt32());
        var error = advantages.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"{kase} plain advantages max |Δ| = {error:E2}");
        Assert.True(error < 1e-6, $"advantages differ by {error}");
        Assert.Equal([false], zero);
    }

    [Theory, MemberData(nameof(Scenarios))]
    public void Kl_matches_the_fixture(string kase, string scenario)
    {
        using var scope = NewDisposeScope();
        var f = Fixture(kase);
        var kl = GrpoLoss.KlK3(f[$"{scenario}_logps"], f["ref_logps"]);
        // Compared everywhere, padding included: the fixture's KL is unmasked.
        output.WriteLine($"{kase} {scenario} KL max |Δ| = {MaxAbs(kl, f[$"{scenario}_kl"]):E2}");
        Assert.True(MaxAbs(kl, f[$"{scenario}_kl"]) < 1e-6, $"KL differs by {MaxAbs(kl, f[$"{scenario}_kl"])}");
    }

    [Theory, MemberData(nameof(Scenarios))]
    public void Losses_match_the_fixture(string kase, string scenario)
    {
        using var scope = NewDisposeScope();
        var f = Fixture(kase);
        var m = Manifest(kase);
        var expected = m.GetProperty("losses").GetProperty(scenario);
        var logps = f[$"{scenario}_logps"].requires_grad_(true);
        // make_golden.py: old = logps.detach() on policy, logps.detach() + old_logps_delta off policy.
        Tensor? old = scenario == "on_policy" ? null : logps.detach() + f["old_logps_delta"];
        foreach (var (loss, key) in new[] { (LossType.Grpo, "grpo"), (LossType.Bnpo, "bnpo"), (LossType.DrGrpo, "dr_grpo") })
        {
            var r = GrpoLoss.Compute(logps, old, f["ref_logps"], f["advantages"], f["completion_mask"], Options(m, loss));
            var want = expected.GetProperty(key).GetDouble();
            output.WriteLine($"{kase} {scenario} {key}: |Δ| = {Math.Abs(r.LossValue - want):E2}");
            Assert.True(Math.Abs(r.LossValue - want) < 1e-5, $"{kase} {scenario} {key}: {r.LossValue} vs {want}");
            Assert.Equal(expected.GetProperty("clipped_fraction").GetDouble(), r.OutOfRangeFraction, 6);
            Assert.Equal(f["completion_mask"].sum().item<long>(), r.Tokens);
        }
    }
}
