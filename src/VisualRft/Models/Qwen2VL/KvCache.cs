using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// Preallocated keys and values per decoder layer, <c>[rows, kv_heads, capacity, head_dim]</c>, written in place
/// (platform-notes.md §14: growing caches by concatenation costs a copy per token). Holds the key-value heads only;
/// the attention folds the query groups instead of repeating them (see <see cref="Qwen2Attention"/>).
/// </summary>
public sealed class KvCache : IDisposable
{
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }
    public long Capacity { get; }
    public long Rows => Keys[0].shape[0];

    KvCache(Tensor[] keys, Tensor[] values)
    {
        Keys = keys;
        Values = values;
        Capacity = keys[0].shape[2];
    }

    public static KvCache Allocate(Qwen2VLTextConfig cfg, long rows, long capacity, ScalarType dtype, Device device)
    {
        Tensor New() => torch.zeros([rows, cfg.NumKeyValueHeads, capacity, cfg.HeadDim], dtype: dtype, device: device);
        return new KvCache(
            Enumerable.Range(0, cfg.NumHiddenLayers).Select(_ => New()).ToArray(),
            Enumerable.Range(0, cfg.NumHiddenLayers).Select(_ => New()).ToArray());
    }

    /// <summary>
    /// A new cache of <paramref name="capacity"/> positions whose row r·g+j (j &lt; g) holds this cache's row r over the
    /// first <paramref name="length"/> positions: one prefill per prompt serves its g samples.
    /// </summary>
    public KvCache RepeatInterleave(int g, long length, long capacity)
    {
        Tensor Grow(Tensor t)
        {
            var s = t.shape;
            var big = torch.zeros([s[0] * g, s[1], capacity, s[3]], dtype: t.dtype, device: t.device);
            using var src = t.narrow(2, 0, length).repeat_interleave(g, 0);
            using var dst = big.narrow(2, 0, length);
            dst.copy_(src);
            return big;
        }
        return new KvCache(Keys.Select(Grow).ToArray(), Values.Select(Grow).ToArray());
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
