using System.Text.RegularExpressions;
using VisualRft.Data;
using VisualRft.Imaging;
using VisualRft.Policy;
using VisualRft.Torch;
using VisualRft.Training;
using static TorchSharp.torch;

namespace VisualRft.Evaluation;

/// <summary>
/// Does a model read its answers off the image? Teacher-forced negative log-likelihood of the SFT targets
/// (<see cref="SftTrainer.Target"/>), split into the box-coordinate digits and all other tokens, once with each sample's
/// own image and once with every prompt paired with the next sample's image. A model that looks at the image loses
/// likelihood when the images are swapped; equal figures mean that part of the answer comes from the text alone.
/// Why it exists: a tiny model pre-trained from scratch learned to count objects from the image but produced its boxes
/// from the prompt alone (coordinate NLL 1.223 with the right images, 1.221 swapped), which no loss curve shows.
/// </summary>
public sealed partial record ImageDependence(
    double CoordinateNll, double CoordinateNllSwapped, int CoordinateTokens,
    double OtherNll, double OtherNllSwapped, int OtherTokens)
{
    public override string ToString() =>
        $"box coordinates: NLL {CoordinateNll:F3} with the right images, {CoordinateNllSwapped:F3} with swapped ones ({CoordinateTokens} digits); " +
        $"other tokens: {OtherNll:F3} vs {OtherNllSwapped:F3} ({OtherTokens} tokens)";

    /// <summary>Measures <paramref name="samples"/> (at least two: the swap pairs each prompt with the next sample's image).</summary>
    public static ImageDependence Measure(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples, int batchSize = 8)
    {
        if (samples.Count < 2) throw new ArgumentException("at least two samples are needed to swap images", nameof(samples));
        using var finalizers = FinalizerGate.Hold();
        var sums = new double[4];
        int coordinates = 0, others = 0;
        var swappedImages = samples.Select((_, i) => samples[(i + 1) % samples.Count].Image).ToList();
        for (int start = 0; start < samples.Count; start += batchSize)
        {
            var chunk = samples.Skip(start).Take(batchSize).ToList();
            var isCoordinate = chunk.Select(s => CoordinateTokenMask(policy, SftTrainer.Target(s))).ToList();
            for (int swapped = 0; swapped < 2; swapped++)
            {
                var images = swapped == 0 ? chunk.Select(s => s.Image) : swappedImages.Skip(start).Take(chunk.Count);
                var logps = TargetLogProbs(policy, chunk, images.ToList());
                for (int b = 0; b < chunk.Count; b++)
                    for (int j = 0; j < isCoordinate[b].Length; j++)
                    {
                        var slot = (isCoordinate[b][j] ? 0 : 2) + swapped;
                        sums[slot] -= logps[b][j];
                        if (swapped == 0) { if (isCoordinate[b][j]) coordinates++; else others++; }
                    }
            }
        }
        return new ImageDependence(sums[0] / Math.Max(1, coordinates), sums[1] / Math.Max(1, coordinates), coordinates,
            sums[2] / Math.Max(1, others), sums[3] / Math.Max(1, others), others);
    }

    /// <summary>Per-token log-probabilities of each sample's target given its prompt and the given image.</summary>
    static float[][] TargetLogProbs(VisionLanguagePolicy policy, IReadOnlyList<VisualSample> samples, IReadOnlyList<RgbImage> images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var batch = policy.Encode(samples, images);
        var (ids, mask) = SftTrainer.EncodeTargets(policy, samples);
        var device = policy.Device;
        var logps = policy.Model.CompletionLogProbs(batch.InputIdsTensor().to(device), batch.AttentionMaskTensor().to(device), ids, mask,
            policy.EncodeImages(batch));
        var c = (int)ids.shape[1];
        var lengths = mask.sum(1).cpu().data<long>().ToArray();
        var flat = logps.cpu().data<float>().ToArray();
        return [.. lengths.Select((n, b) => flat.AsSpan(b * c, (int)n).ToArray())];
    }

    /// <summary>For each token of <paramref name="target"/> (plus the closing end token): is it a digit inside a box list?</summary>
    internal static bool[] CoordinateTokenMask(VisionLanguagePolicy policy, string target)
    {
        var spans = BoxList().Matches(target).Select(m => (m.Groups[1].Index, End: m.Groups[1].Index + m.Groups[1].Length)).ToList();
        var tokens = policy.EncodeCompletion(target);
        var mask = new bool[tokens.Length];
        var offset = 0;
        for (int j = 0; j < tokens.Length; j++)
        {
            var piece = policy.Processor.Tokenizer.Decode([tokens[j]], skipSpecialTokens: true);
            mask[j] = piece.Any(char.IsAsciiDigit) && spans.Any(s => offset >= s.Index && offset + piece.Length <= s.End);
            offset += piece.Length;
        }
        return mask;
    }

    [GeneratedRegex(@"'Position': \[([^\]]*)\]")]
    private static partial Regex BoxList();
}
