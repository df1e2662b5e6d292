using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace VisualRft.Models.Qwen2VL;

/// <summary>
/// x·Wᵀ + b for a single row x and a bfloat16 weight W on an x86 CPU with AVX-512: the products of decoding one
/// sequence, which stream every weight from memory once per token. libtorch 2.10 sends them through oneDNN at about half
/// of what the memory delivers (its bfloat16 matrix-vector fast path is built for ARM only); this loop widens 16
/// bfloat16 at a time to float32 (zero-extend, shift left 16), accumulates with FMA in float32 as oneDNN does, rounds the
/// row to bfloat16 once, and splits the rows over torch's thread count. Measured on 2 cores, a 1536 × 17920 weight:
/// 36–40 GB/s on one thread and 47–59 on two, against 17–20 and 24–32 for <c>F.linear</c>, and 33–36 / 46–55 for a
/// plain <c>sum</c> over the same bytes.
/// </summary>
public static class Bf16RowProduct
{
    /// <summary>True when the loop applies: no autograd, one row, a contiguous bfloat16 weight on the CPU whose row
    /// length is a multiple of 64, AVX-512.</summary>
    public static bool Applies(Tensor x, Tensor weight) =>
        Avx512F.IsSupported && weight.dtype == ScalarType.BFloat16 && weight.device_type == DeviceType.CPU && weight.dim() == 2
        && x.numel() == weight.shape[1] && weight.shape[1] % 64 == 0 && weight.numel() * 2 <= int.MaxValue
        && weight.is_contiguous() && !torch.is_grad_enabled();

    /// <summary>x [..., K] (one row) · weight [N, K]ᵀ + bias [N] → [..., N] in bfloat16.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var n = (int)weight.shape[0];
        using var xf = x.to_type(ScalarType.Float32).contiguous();
        using var y = torch.empty(n, ScalarType.Float32);
        var threads = Math.Max(1, torch.get_num_threads());
        var block = (n + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads },
            t => Rows(weight, xf, y, t * block, Math.Min(n, (t + 1) * block)));
        if (bias is not null) y.add_(bias);
        return y.to_type(ScalarType.BFloat16).view([.. x.shape[..^1], n]);
    }

    static void Rows(Tensor weight, Tensor x, Tensor y, int start, int end)
    {
        var k = (nuint)weight.shape[1];
        ref var w = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, ushort>(weight.bytes));
        ref var v = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, float>(x.bytes));
        var outputs = MemoryMarshal.Cast<byte, float>(y.bytes);
        for (var r = start; r < end; r++)
        {
            // Four independent sums keep the FMA pipeline full; one row at a time keeps the reads sequential.
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            var row = (nuint)r * k;
            for (nuint j = 0; j < k; j += 64)
            {
                s0 = Fma(ref w, row + j, ref v, j, s0);
                s1 = Fma(ref w, row + j + 16, ref v, j + 16, s1);
                s2 = Fma(ref w, row + j + 32, ref v, j + 32, s2);
                s3 = Fma(ref w, row + j + 48, ref v, j + 48, s3);
            }
            outputs[r] = Vector512.Sum(s0 + s1 + (s2 + s3));
        }
    }

    // bfloat16 is the high half of a float32: widening the 16 bits and shifting them up is an exact conversion.
    static Vector512<float> Fma(ref ushort w, nuint wAt, ref float v, nuint vAt, Vector512<float> sum) =>
        Vector512.FusedMultiplyAdd(
            Vector512.ShiftLeft(Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref w, wAt)), 16).AsSingle(),
            Vector512.LoadUnsafe(ref v, vAt), sum);
}
