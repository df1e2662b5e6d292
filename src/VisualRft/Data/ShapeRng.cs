using System.Text;

namespace VisualRft.Data;

/// <summary>
/// The synthetic datasets' random source: xoshiro256** seeded through SplitMix64. We do not use <see cref="System.Random"/>:
/// its seeded sequence is stable in practice (the legacy subtractive generator is kept for compatibility) but is not a
/// documented contract, whereas this one is fixed by the few lines below, so a manifest and seed give the same bytes on
/// every runtime and platform. Every sample gets its own generator from <see cref="Mix"/> of (seed, split, category, index),
/// so samples do not depend on each other and a k-shot split is the first k images of a larger one.
/// </summary>
internal sealed class ShapeRng
{
    ulong s0, s1, s2, s3;

    public ShapeRng(ulong seed)
    {
        var x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    /// <summary>Combines the parts into one seed (order matters).</summary>
    public static ulong Mix(params ulong[] parts)
    {
        var h = 0x243F6A8885A308D3UL;
        foreach (var p in parts) { var x = h ^ p; h = SplitMix(ref x); }
        return h;
    }

    /// <summary>FNV-1a over UTF-8: a stable string hash (<see cref="string.GetHashCode()"/> is randomised per process).</summary>
    public static ulong Hash(string s)
    {
        var h = 0xCBF29CE484222325UL;
        foreach (var b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 0x100000001B3UL; }
        return h;
    }

    public ulong NextUInt64()
    {
        var result = RotL(s1 * 5, 7) * 9;
        var t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = RotL(s3, 45);
        return result;
    }

    /// <summary>Uniform integer in [0, n) by the multiply-high method.</summary>
    public int Next(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"upper bound must be positive, got {n}");
        return (int)Math.BigMul(NextUInt64(), (ulong)n, out _);
    }

    /// <summary>Uniform integer in [lo, hi).</summary>
    public int Next(int lo, int hi) => lo + Next(hi - lo);

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// Integer grain in [−a, a] for pixel noise, eight draws per 64-bit word, scaled by multiply-shift rather than a
    /// division (a slight unevenness that does not matter for texture; this runs once per pixel).
    /// </summary>
    public int Grain(int a)
    {
        if (grainLeft == 0) { grainWord = NextUInt64(); grainLeft = 8; }
        var b = (int)(grainWord & 0xFF);
        grainWord >>= 8; grainLeft--;
        return ((b * (2 * a + 1)) >> 8) - a;
    }

    ulong grainWord;
    int grainLeft;

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    public bool Chance(double p) => NextDouble() < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    static ulong SplitMix(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));
}
