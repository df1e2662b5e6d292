using System.Security.Cryptography;
using System.Text;

namespace VisualRft.Data;

/// <summary>
/// The train and test samples a manifest describes. Generation is deterministic: the same manifest (after overrides) gives
/// byte-identical images and texts, and each sample depends only on (seed, split, category, index), so the k-shot training
/// split is the first k images per category of any larger one (1 ⊂ 2 ⊂ 4 ⊂ 8 ⊂ 16 shots, as in few-shot benchmarks).
/// Samples are plain data (managed pixels): nothing to dispose.
/// </summary>
public sealed class SyntheticDataset
{
    public DatasetManifest Manifest { get; }
    public IReadOnlyList<VisualSample> Train { get; }
    public IReadOnlyList<VisualSample> Test { get; }

    SyntheticDataset(DatasetManifest manifest, IReadOnlyList<VisualSample> train, IReadOnlyList<VisualSample> test)
    {
        Manifest = manifest; Train = train; Test = test;
    }

    /// <summary>Generates the dataset; <paramref name="shots"/> replaces the training size (images per category; grounding: images).</summary>
    public static SyntheticDataset FromManifest(DatasetManifest manifest, int? shots = null, int? testSize = null, int? seed = null, int? imageSize = null)
    {
        var m = manifest.With(shots, testSize, seed, imageSize);
        return new SyntheticDataset(m, Generate(m, DatasetSplit.Train), Generate(m, DatasetSplit.Test));
    }

    /// <summary>One split, category-major (all images of the first category, then the next).</summary>
    public static IReadOnlyList<VisualSample> Generate(DatasetManifest m, DatasetSplit split)
    {
        var spec = split == DatasetSplit.Train ? m.Train : m.Test;
        if (m.Task == VisualTask.Grounding)
            return [.. Enumerable.Range(0, spec.Size).Select(i => GroundingGenerator.Generate(m, split, i))];
        var samples = new List<VisualSample>();
        foreach (var category in m.CategoriesOf(spec.Categories))
            for (var i = 0; i < spec.Size; i++)
                samples.Add(m.Task == VisualTask.Classification
                    ? ClassificationGenerator.Generate(m, split, category, i)
                    : DetectionGenerator.Generate(m, split, category, i));
        return samples;
    }

    /// <summary>SHA-256 (hex) over every sample's id, pixels, problem and solution, in order: equal fingerprints, equal data.</summary>
    public string Fingerprint() => FingerprintOf([.. Train, .. Test]);

    public static string FingerprintOf(IEnumerable<VisualSample> samples)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var s in samples)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(s.Id + "\0" + s.Problem + "\0" + s.Solution + "\0"));
            sha.AppendData(s.Image.Pixels);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

}
