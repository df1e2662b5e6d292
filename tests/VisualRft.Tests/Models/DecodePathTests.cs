using TorchSharp;
using VisualRft.Models.Qwen2VL;
using VisualRft.Torch;
using static TorchSharp.torch;

namespace VisualRft.Tests.Models;

/// <summary>The pieces that make decoding cheap keep the Hugging Face semantics: stacked projections, top-k sampling, threads.</summary>
public class DecodePathTests
{
    public DecodePathTests() => TorchRuntime.EnsureLoaded();

    static Tensor Logits(Qwen2VLForConditionalGeneration m, Tensor ids) => m.Forward(ids, null, null);

    [Fact]
    public void Stacked_projections_see_in_place_updates_and_pass_gradients_to_the_hf_parameters()
    {
        using var scope = NewDisposeScope();
        using var m = Qwen2VLForConditionalGeneration.Create(Qwen2VLConfig.Tiny(), seed: 5);
        var ids = torch.tensor(new long[] { 10, 11, 12, 13, 14, 15 }).view(2, 3);
        var attn = m.model.layers[0].self_attn;
        using (torch.no_grad()) attn.k_proj.weight.add_(0.1);   // as an optimizer step or a load writes it
        Tensor fused;
        using (torch.no_grad()) fused = Logits(m, ids);          // one product with the stacked q/k/v and gate/up
        var recorded = Logits(m, ids);                           // autograd on: the parts' weights, concatenated
        Assert.True(fused.allclose(recorded.detach(), rtol: 0, atol: 1e-6));
        recorded.square().sum().backward();
        foreach (var p in new[] { attn.q_proj, attn.k_proj, attn.v_proj, m.model.layers[0].mlp.gate_proj, m.model.layers[0].mlp.up_proj })
            Assert.True(p.weight.grad is { } g && g.abs().sum().item<float>() > 0);
        Assert.Contains("model.layers.0.self_attn.k_proj.weight", m.state_dict().Keys);
    }

    [Fact]
    public void Replaced_parameters_fall_back_to_the_parts()
    {
        using var scope = NewDisposeScope();
        using var m = Qwen2VLForConditionalGeneration.Create(Qwen2VLConfig.Tiny(), seed: 6);
        var ids = torch.tensor(new long[] { 3, 4, 5, 6 }).view(1, 4);
        Tensor before;
        using (torch.no_grad()) before = Logits(m, ids);
        m.to(ScalarType.Float64);                                // TorchSharp replaces every parameter
        using (torch.no_grad())
        {
            var after = Logits(m, ids);
            Assert.Equal(ScalarType.Float64, after.dtype);
            Assert.True(after.to_type(ScalarType.Float32).allclose(before, rtol: 0, atol: 1e-4));
        }
    }

    [Fact]
    public void Top_k_sampling_draws_among_the_k_largest_logits_with_their_softmax_frequencies()
    {
        using var scope = NewDisposeScope();
        const int rows = 40_000, k = 4;
        var row = torch.randn(50, generator: new Generator(2));
        var logits = row.unsqueeze(0).expand(rows, 50).contiguous();
        foreach (var temperature in new[] { 1.0, 2.0 })
        {
            var draws = Qwen2VLForConditionalGeneration.SampleNext(logits, new SamplingOptions(TopK: k, Temperature: temperature), new Generator(9));
            var (top, index) = row.topk(k);
            var expected = (top / temperature).softmax(-1).data<float>().ToArray();
            var counts = torch.bincount(draws, minlength: 50).to_type(ScalarType.Float32) / rows;
            Assert.Equal(1f, counts.index_select(0, index).sum().item<float>());     // nothing outside the top k
            var seen = counts.index_select(0, index).data<float>().ToArray();
            for (int i = 0; i < k; i++) Assert.InRange(seen[i], expected[i] - 0.01, expected[i] + 0.01);
        }
    }

    [Fact]
    public void The_bfloat16_row_product_matches_torch_up_to_rounding()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        using var scope = NewDisposeScope();
        var w = torch.randn(300, 192, generator: new Generator(1)).to_type(ScalarType.BFloat16);
        var b = torch.randn(300, generator: new Generator(2)).to_type(ScalarType.BFloat16);
        var x = torch.randn(1, 1, 192, generator: new Generator(3)).to_type(ScalarType.BFloat16);
        using var noGrad = torch.no_grad();
        Assert.True(Bf16RowProduct.Applies(x, w));
        Assert.False(Bf16RowProduct.Applies(x.expand(2, 1, 192), w));   // more than one row: torch's product
        var exact = nn.functional.linear(x.to_type(ScalarType.Float64), w.to_type(ScalarType.Float64), b.to_type(ScalarType.Float64));
        var threads = torch.get_num_threads();
        foreach (var n in new[] { 1, 2 })
        {
            torch.set_num_threads(n);
            var y = Bf16RowProduct.Linear(x, w, b);
            Assert.Equal(new long[] { 1, 1, 300 }, y.shape);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            // One rounding to bfloat16 (8 significant bits) of a float32 sum: within half a unit of the last place.
            var err = (y.to_type(ScalarType.Float64) - exact).abs() / exact.abs().clamp_min(1e-3);
            Assert.True(err.max().item<double>() <= 1.0 / 256, $"relative error {err.max().item<double>()}");
        }
        torch.set_num_threads(threads);
    }

    [Fact]
    public void Small_work_runs_on_one_thread_and_large_work_on_the_free_cores()
    {
        if (ThreadPolicy.Override is not null) return;   // VRFT_THREADS fixes every count
        Assert.Equal(1, ThreadPolicy.Choose(8, 128, 512, 4));   // a decode step of the tiny model
        Assert.InRange(ThreadPolicy.Choose(1, 1536, 17920, 2), 1, Environment.ProcessorCount);   // 2B decode: the free cores
    }

    [Theory]
    [InlineData(new[] { 110.0, 109, 116 }, new[] { 130.0, 146, 129 }, 1)]   // two threads slower (this VM, 2026-11-26)
    [InlineData(new[] { 120.0, 118, 300 }, new[] { 95.0, 90, 99 }, 2)]      // two threads faster; one disturbed step
    public void Stepped_threads_time_both_counts_then_keep_the_faster(double[] oneMs, double[] twoMs, int expected)
    {
        var d = new StepDecision(2);
        var t0 = new DateTime(2026, 11, 26, 12, 0, 0, DateTimeKind.Utc);
        var (a, b) = (0, 0);
        var seen = new List<int>();
        while (a < oneMs.Length || b < twoMs.Length)
        {
            var n = d.Next(t0);
            seen.Add(n);
            d.Record(n, n == 1 ? oneMs[a++] : twoMs[b++], t0);
        }
        Assert.Equal([1, 2, 1, 2, 1, 2], seen);   // alternating, StepDecision.Trials of each
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(expected, d.Next(t0.AddSeconds(10))));
        d.Record(3 - expected, 1.0, t0);            // a late timing does not reopen the choice
        Assert.Equal(expected, d.Next(t0.AddSeconds(20)));
        Assert.Equal(1, d.Next(t0 + StepDecision.Recheck));   // after the recheck interval it times both again
    }
}
