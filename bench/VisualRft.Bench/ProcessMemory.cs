namespace VisualRft.Bench;

/// <summary>This process's resident memory from /proc/self/status (Linux): VmRSS now, VmHWM the peak since the last
/// <see cref="ResetPeak"/> (writing 5 to clear_refs resets it).</summary>
static class ProcessMemory
{
    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static double ResidentMb() => StatusMb("VmRSS:");

    public static double PeakMb() => StatusMb("VmHWM:");

    static double StatusMb(string key)
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
        return line is null ? double.NaN : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
