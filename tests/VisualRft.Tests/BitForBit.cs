using VisualRft.Torch;

namespace VisualRft.Tests;

/// <summary>
/// Tests that compare two runs bit for bit. Backward passes round differently on one and on two threads, and the automatic
/// thread policy follows the load of the machine (<see cref="ThreadPolicy"/>'s remarks), which the parallel tests change.
/// These run alone, after the parallel tests, and fix one thread while they compare.
/// </summary>
[CollectionDefinition(nameof(BitForBit), DisableParallelization = true)]
public class BitForBit
{
    /// <summary>One thread for every model call until disposed; then the previous setting again.</summary>
    public static IDisposable OneThread() => new Fixed(ThreadPolicy.Override);

    sealed class Fixed : IDisposable
    {
        readonly int? previous;
        public Fixed(int? previous) { this.previous = previous; ThreadPolicy.Override = 1; }
        public void Dispose() => ThreadPolicy.Override = previous;
    }
}
