namespace VisualRft.Training;

/// <summary>
/// The C#-side random stream of a run (data order, prompt choice): xoshiro256** seeded through SplitMix64, chosen
/// because its whole state is four numbers that a checkpoint stores and restores exactly — <see cref="System.Random"/>
/// cannot be serialised. Tensor-side draws (sampling) use a <c>torch.Generator</c>, checkpointed beside it.
/// </summary>
public sealed class TrainingRandom
{
    readonly ulong[] _s = new ulong[4];

    public TrainingRandom(long seed)
    {
        var x = (ulong)seed;
        for (int i = 0; i < 4; i++)
        {
            // SplitMix64 spreads any seed (0 included) into a non-zero state.
            var z = x += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            _s[i] = z ^ (z >> 31);
        }
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var result = ulong.RotateLeft(_s[1] * 5, 7) * 9;
        var t = _s[1] << 17;
        _s[2] ^= _s[0];
        _s[3] ^= _s[1];
        _s[1] ^= _s[2];
        _s[0] ^= _s[3];
        _s[2] ^= t;
        _s[3] = ulong.RotateLeft(_s[3], 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>), without modulo bias (rejection sampling).</summary>
    public int Next(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be > 0");
        var n = (ulong)maxExclusive;
        var limit = ulong.MaxValue - ulong.MaxValue % n;
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (int)(r % n);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A copy of the four state words.</summary>
    public ulong[] GetState() => (ulong[])_s.Clone();

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    public void SetState(IReadOnlyList<ulong> state)
    {
        if (state.Count != 4) throw new ArgumentException($"a TrainingRandom state has 4 words, got {state.Count}", nameof(state));
        if (state.All(w => w == 0)) throw new ArgumentException("the all-zero state is invalid for xoshiro256**", nameof(state));
        for (int i = 0; i < 4; i++) _s[i] = state[i];
    }
}
