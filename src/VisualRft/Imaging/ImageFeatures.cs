using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Imaging;

/// <summary>The processor's output for a list of images: <c>pixel_values</c> [N, 1176] (row-major float32, rows of all
/// images concatenated in order) and one <c>image_grid_thw</c> row per image (qwen2vl-spec §4.4).</summary>
public sealed class ImageFeatures
{
    public float[] PixelValues { get; }
    public int PatchDim { get; }
    public int NumPatches => PixelValues.Length / PatchDim;
    public IReadOnlyList<(int T, int H, int W)> GridThw { get; }

    public ImageFeatures(float[] pixelValues, int patchDim, IReadOnlyList<(int T, int H, int W)> gridThw)
    {
        if (patchDim <= 0 || pixelValues.Length % patchDim != 0)
            throw new ArgumentException($"pixel values of length {pixelValues.Length} are not rows of {patchDim}");
        long rows = gridThw.Sum(g => (long)g.T * g.H * g.W);
        if (rows * patchDim != pixelValues.Length)
            throw new ArgumentException($"grids describe {rows} patches but pixel values hold {pixelValues.Length / patchDim}");
        (PixelValues, PatchDim, GridThw) = (pixelValues, patchDim, gridThw);
    }

    /// <summary>Row <paramref name="i"/> of <c>pixel_values</c>.</summary>
    public ReadOnlySpan<float> Row(int i) => PixelValues.AsSpan(i * PatchDim, PatchDim);

    /// <summary>Number of <c>&lt;|image_pad|&gt;</c> tokens of image <paramref name="i"/>: t·h·w / merge².</summary>
    public int TokenCount(int i, int mergeSize = 2) => GridThw[i].T * GridThw[i].H * GridThw[i].W / (mergeSize * mergeSize);

    /// <summary><c>pixel_values</c> as a float32 tensor [N, PatchDim] (a copy, on CPU).</summary>
    public Tensor PixelValuesTensor() => torch.tensor(PixelValues, new long[] { NumPatches, PatchDim }, ScalarType.Float32);

    /// <summary><c>image_grid_thw</c> as an int64 tensor [images, 3].</summary>
    public Tensor GridThwTensor() =>
        torch.tensor(GridThw.SelectMany(g => new long[] { g.T, g.H, g.W }).ToArray(), new long[] { GridThw.Count, 3 }, ScalarType.Int64);

    /// <summary>Concatenates features of several calls, keeping the order (pixel rows and grids both).</summary>
    public static ImageFeatures Concat(IReadOnlyList<ImageFeatures> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("nothing to concatenate", nameof(parts));
        int dim = parts[0].PatchDim;
        if (parts.Any(p => p.PatchDim != dim)) throw new ArgumentException("image features with different patch sizes");
        return new ImageFeatures(parts.SelectMany(p => p.PixelValues).ToArray(), dim, parts.SelectMany(p => p.GridThw).ToList());
    }
}
