namespace VisualRft.IO;

/// <summary>
/// How much memory work may plan for, checked before large allocations so that an impossible size is refused with a
/// message instead of ending in an out-of-memory kill.
/// </summary>
public static class MemoryBudget
{
    /// <summary>The memory this process can use: physical memory, or the container's limit (the GC's view).</summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>The share of <see cref="AvailableBytes"/> one data set or one model may take (the rest is left to
    /// activations, optimizer state and the process).</summary>
    public static long PlanningBytes => AvailableBytes / 2;

    /// <summary>"1.2 GB" style.</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F1} GB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MB",
        _ => $"{bytes / 1024.0:F1} KB",
    };
}
