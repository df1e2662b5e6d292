namespace VisualRft.Rewards.Parsing;

/// <summary>A sequence of (key, item) with O(log n) expected access and insertion by position (an implicit treap with
/// deterministic priorities).</summary>
sealed class IndexedSequence(int capacity)
{
    readonly int[] left = new int[capacity], right = new int[capacity], size = new int[capacity], item = new int[capacity];
    readonly double[] key = new double[capacity];
    readonly uint[] priority = new uint[capacity];
    int root = -1, count;
    uint state = 2463534242;

    int Size(int t) => t < 0 ? 0 : size[t];

    public double KeyAt(int position)
    {
        int t = root;
        while (true)
        {
            int ls = Size(left[t]);
            if (position < ls) t = left[t];
            else if (position == ls) return key[t];
            else { position -= ls + 1; t = right[t]; }
        }
    }

    public void Insert(int position, double k, int value)
    {
        int x = count++;
        (left[x], right[x], size[x], key[x], item[x]) = (-1, -1, 1, k, value);
        state ^= state << 13; state ^= state >> 17; state ^= state << 5;   // xorshift32
        priority[x] = state;
        var (a, b) = Split(root, position);
        root = Merge(Merge(a, x), b);
    }

    (int, int) Split(int t, int position)
    {
        if (t < 0) return (-1, -1);
        if (position <= Size(left[t]))
        {
            var (a, b) = Split(left[t], position);
            left[t] = b;
            Update(t);
            return (a, t);
        }
        var (c, d) = Split(right[t], position - Size(left[t]) - 1);
        right[t] = c;
        Update(t);
        return (t, d);
    }

    int Merge(int a, int b)
    {
        if (a < 0) return b;
        if (b < 0) return a;
        if (priority[a] > priority[b])
        {
            right[a] = Merge(right[a], b);
            Update(a);
            return a;
        }
        left[b] = Merge(a, left[b]);
        Update(b);
        return b;
    }

    void Update(int t) => size[t] = 1 + Size(left[t]) + Size(right[t]);

    /// <summary>The items in sequence order.</summary>
    public int[] Items()
    {
        var result = new int[count];
        var stack = new Stack<int>();
        int t = root, i = 0;
        while (t >= 0 || stack.Count > 0)
        {
            for (; t >= 0; t = left[t]) stack.Push(t);
            t = stack.Pop();
            result[i++] = item[t];
            t = right[t];
        }
        return result;
    }
}
