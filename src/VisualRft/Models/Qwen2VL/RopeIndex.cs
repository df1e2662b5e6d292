using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// get_rope_index (spec §5.4): 3-axis M-RoPE positions for a left- or right-padded batch. Per row, over the tokens
/// whose mask is 1: text runs count up on all three axes; each image run of t·(h/m)·(w/m) tokens gets
/// (t, row, column) offsets from the position after the preceding text; padded positions get 0 (transformers 5.x, the
/// golden reference; 4.x wrote 1 — no output depends on it, as padded keys are masked). The rope delta of a row is
/// (largest position + 1) − (number of unpadded tokens), as transformers 5.x defines it, so that the k-th real token
/// of the row (0-based, counting generated ones) has M-RoPE position k + delta on all axes when decoding (spec §5.5;
/// 4.x subtracted the padded length and added the cache index instead — the same positions).
/// </summary>
public static class RopeIndex
{
    /// <returns>position_ids [3, N, S] and rope_deltas [N, 1], both int64 on the CPU.</returns>
    public static (Tensor PositionIds, Tensor RopeDeltas) Compute(Tensor inputIds, Tensor? attentionMask, Tensor? gridThw, Qwen2VLConfig config)
    {
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [N, S], got [{string.Join(",", inputIds.shape)}]");
        var (n, s) = ((int)inputIds.shape[0], (int)inputIds.shape[1]);
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attention_mask [{string.Join(",", attentionMask.shape)}] does not match input_ids [{n},{s}]");
        var m = config.Vision.SpatialMergeSize;
        var grid = gridThw is null ? [] : VisionTower.ReadGrid(gridThw, m);
        using var idsCpu = inputIds.to_type(ScalarType.Int64).cpu();
        var ids = idsCpu.data<long>().ToArray();
        long[] mask;
        if (attentionMask is null) mask = Enumerable.Repeat(1L, n * s).ToArray();
        else { using var mc = attentionMask.to_type(ScalarType.Int64).cpu(); mask = mc.data<long>().ToArray(); }

        var pos = new long[3 * n * s];
        var deltas = new long[n];
        var image = 0;
        for (int b = 0; b < n; b++)
        {
            var valid = Enumerable.Range(0, s).Where(j => mask[b * s + j] == 1).ToArray();
            var rowPos = new long[3, valid.Length];
            int st = 0;
            long next = 0;   // the first position after what has been placed so far
            // Like HF, an image is a <|vision_start|> followed by an image token; stray image-token ids elsewhere
            // (say, sampled in a completion) are plain text.
            var images = Enumerable.Range(0, Math.Max(0, valid.Length - 1))
                .Count(j => ids[b * s + valid[j]] == config.VisionStartTokenId && ids[b * s + valid[j + 1]] == config.ImageTokenId);
            for (int r = 0; r < images; r++)
            {
                var ed = Array.FindIndex(valid, st, j => ids[b * s + j] == config.ImageTokenId);
                if (image >= grid.Length)
                    throw new ArgumentException($"row {b} has more image-token runs than image_grid_thw has rows ({grid.Length})");
                var (t, h, w) = grid[image++];
                long lh = h / m, lw = w / m, count = t * lh * lw;
                if (ed + count > valid.Length || Enumerable.Range(ed, (int)count).Any(j => ids[b * s + valid[j]] != config.ImageTokenId))
                    throw new ArgumentException($"row {b}: image {image - 1} (grid {t}x{h}x{w}) needs {count} consecutive image tokens at position {valid[ed]}");
                for (int j = st; j < ed; j++)
                    for (int a = 0; a < 3; a++) rowPos[a, j] = next + j - st;
                var s0 = next + ed - st;
                int k = ed;
                for (long ti = 0; ti < t; ti++)
                    for (long hi = 0; hi < lh; hi++)
                        for (long wi = 0; wi < lw; wi++, k++)
                        {
                            rowPos[0, k] = s0 + (config.IsQwen25 ? 0 : ti);   // Qwen2.5-VL: images have time index 0 (spec §7)
                            rowPos[1, k] = s0 + hi;
                            rowPos[2, k] = s0 + wi;
                        }
                next = s0 + Math.Max(config.IsQwen25 ? 0 : t - 1, Math.Max(lh - 1, lw - 1)) + 1;
                st = ed + (int)count;
            }
            for (int j = st; j < valid.Length; j++)
                for (int a = 0; a < 3; a++) rowPos[a, j] = next + j - st;
            var max = valid.Length == 0 ? 0 : Enumerable.Range(0, valid.Length).Max(j => Math.Max(rowPos[0, j], Math.Max(rowPos[1, j], rowPos[2, j])));
            for (int a = 0; a < 3; a++)
                for (int j = 0; j < valid.Length; j++) pos[(a * n + b) * s + valid[j]] = rowPos[a, j];
            deltas[b] = max + 1 - valid.Length;
        }
        if (image != grid.Length)
            throw new ArgumentException($"image_grid_thw has {grid.Length} rows but the input ids hold {image} image-token runs");
        return (torch.tensor(pos, [3, n, s], ScalarType.Int64), torch.tensor(deltas, [n, 1], ScalarType.Int64));
    }
}
