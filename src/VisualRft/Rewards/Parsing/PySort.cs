namespace VisualRft.Rewards.Parsing;

/// <summary>
/// CPython's <c>sorted(key=…, reverse=True)</c> on float keys, including its behaviour with NaN keys (every comparison
/// with NaN is false, so the result depends on the algorithm). Without NaN the comparisons are consistent and every
/// stable sort gives Python's order (equal keys keep their input order, also under <c>reverse=True</c>): O(n log n).
/// With NaN: reverse, count_run + binary insertion sort by <c>&lt;</c>, reverse — exactly CPython's timsort for fewer than
/// 64 elements, used here for any length (for 64+ elements with NaN keys CPython's merges may order differently). The
/// insertion runs on a balanced sequence (<see cref="IndexedSequence"/>), O(n log² n), with the same comparisons as
/// the array version.
/// </summary>
static class PySort
{
    public static int[] SortedIndicesDescending(double[] keys)
    {
        if (!keys.Any(double.IsNaN)) return [.. Enumerable.Range(0, keys.Length).OrderByDescending(i => keys[i])];
        int n = keys.Length;
        var idx = Enumerable.Range(0, n).Reverse().ToArray();
        var k = idx.Select(i => keys[i]).ToArray();
        // count_run: the initial ascending or strictly descending run; a descending run is reversed in place.
        int run = 1;
        if (n > 1)
        {
            run = 2;
            if (k[1] < k[0])
            {
                while (run < n && k[run] < k[run - 1]) run++;
                Array.Reverse(k, 0, run);
                Array.Reverse(idx, 0, run);
            }
            else
                while (run < n && !(k[run] < k[run - 1])) run++;
        }
        var sorted = new IndexedSequence(n);
        for (int i = 0; i < run; i++) sorted.Insert(i, k[i], idx[i]);
        // binarysort of the rest into the run.
        for (int start = run; start < n; start++)
        {
            double pivot = k[start];
            int l = 0, r = start;
            do
            {
                int p = l + ((r - l) >> 1);
                if (pivot < sorted.KeyAt(p)) r = p; else l = p + 1;
            } while (l < r);
            sorted.Insert(l, pivot, idx[start]);
        }
        var result = sorted.Items();
        Array.Reverse(result);
        return result;
    }
}
