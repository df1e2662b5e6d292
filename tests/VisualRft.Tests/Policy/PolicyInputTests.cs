using VisualRft.Data;
using VisualRft.Imaging;
using VisualRft.Text;
using VisualRft.TinyModel;

namespace VisualRft.Tests.Policy;

/// <summary>Inputs the policy refuses with a message naming them, before they reach the model.</summary>
public class PolicyInputTests
{
    [Fact]
    public void A_batch_with_an_invalid_image_grid_is_refused_naming_the_image()
    {
        using var policy = TinyQwen2Vl.Pretrained();
        var samples = SyntheticDatasets.Load("shapes-detection", shots: 1, testSize: 1).Train.Take(2).ToList();
        var batch = policy.Encode(samples);
        var good = batch.Images!;
        int dim = good.PatchDim;
        // the first image as the processor made it, the second with a grid of odd height: 3 is no multiple of the merge size
        var grids = new List<(int T, int H, int W)> { good.GridThw[0], (1, 3, 4) };
        var pixels = new float[(good.GridThw[0].T * good.GridThw[0].H * good.GridThw[0].W + 12) * dim];
        var bad = new ProcessorBatch(batch.InputIds, batch.AttentionMask, batch.PromptLengths, batch.Texts, new ImageFeatures(pixels, dim, grids));
        var e = Assert.Throws<ArgumentException>(() => policy.EncodeImages(bad));
        Assert.Contains("image 1 of the batch of 2 prompts has grid [t 1, h 3, w 4]", e.Message);
        Assert.Contains($"spatial_merge_size {policy.Model.Config.Vision.SpatialMergeSize}", e.Message);

        var otherPatches = new ProcessorBatch(batch.InputIds, batch.AttentionMask, batch.PromptLengths, batch.Texts,
            new ImageFeatures(new float[4 * (dim / 2)], dim / 2, [(1, 2, 2)]));
        Assert.Contains("made by another processor", Assert.Throws<ArgumentException>(() => policy.EncodeImages(otherPatches)).Message);
    }

    [Fact]
    public void A_processor_that_cuts_other_patches_than_the_model_reads_is_refused_at_construction()
    {
        using var policy = TinyQwen2Vl.Pretrained();
        var processor = new Qwen2VLProcessor(policy.Processor.Tokenizer, new Qwen2VLImageProcessor { MergeSize = 4, PatchSize = policy.Processor.ImageProcessor.PatchSize });
        var e = Assert.Throws<ArgumentException>(() => new VisualRft.Policy.VisionLanguagePolicy(policy.Model, processor));
        Assert.Contains("merge_size 4", e.Message);
    }
}
