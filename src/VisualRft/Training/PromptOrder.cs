namespace VisualRft.Training;

/// <summary>
/// The order in which a run visits its training rows: each epoch is a permutation drawn from (seed, epoch), so the row
/// at a position depends only on that position — a resumed run visits the same rows as an uninterrupted one.
/// </summary>
public sealed class PromptOrder(int count, long seed)
{
    long _epoch = -1;
    int[] _order = [];

    public int this[long position]
    {
        get
        {
            var epoch = position / count;
            if (epoch != _epoch)
            {
                var order = Enumerable.Range(0, count).ToArray();
                new TrainingRandom(seed * 1_000_003 + epoch).Shuffle(order);
                (_epoch, _order) = (epoch, order);
            }
            return _order[position % count];
        }
    }
}
