using System.Text.RegularExpressions;
using VisualRft.Data;
using VisualRft.Evaluation;
using VisualRft.TinyModel;
using VisualRft.Training;

namespace VisualRft.Tests.Evaluation;

public class ImageDependenceTests
{
    [Fact]
    public void Every_box_digit_is_counted_as_a_coordinate_and_nothing_else_is()
    {
        using var policy = TinyQwen2Vl.Pretrained();
        var data = SyntheticDatasets.Load("shapes-ovd", shots: 1, seed: 999);
        var samples = data.Train.Take(4).ToList();
        var report = ImageDependence.Measure(policy, samples, batchSize: 3);   // a ragged last batch on purpose

        // The shipped tokenizer splits numbers into single digits (the Qwen2 pre-tokenizer), so coordinate tokens = digits.
        var digits = samples.Sum(s => Regex.Matches(s.Solution, @"'Position': \[([^\]]*)\]").Sum(m => m.Groups[1].Value.Count(char.IsAsciiDigit)));
        var tokens = samples.Sum(s => policy.EncodeCompletion(SftTrainer.Target(s)).Length);
        Assert.Equal(digits, report.CoordinateTokens);
        Assert.Equal(tokens - digits, report.OtherTokens);
        foreach (var nll in new[] { report.CoordinateNll, report.CoordinateNllSwapped, report.OtherNll, report.OtherNllSwapped })
            Assert.True(double.IsFinite(nll) && nll > 0, $"NLL {nll}");
        // Swapping really changes what the model sees: the per-token figures are not bit-identical.
        Assert.NotEqual(report.OtherNll, report.OtherNllSwapped);
    }

    [Fact]
    public void One_sample_cannot_be_swapped()
    {
        using var policy = TinyQwen2Vl.Pretrained();
        var data = SyntheticDatasets.Load("shapes-ovd", shots: 1, seed: 999);
        Assert.Throws<ArgumentException>(() => ImageDependence.Measure(policy, data.Train.Take(1).ToList()));
    }
}
