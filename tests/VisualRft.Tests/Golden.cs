namespace VisualRft.Tests;

/// <summary>The golden fixture folder: <c>VRFT_GOLDEN_DIR</c>, else <c>../shared/fixtures/hf-golden</c> beside the repository.</summary>
public static class Golden
{
    /// <summary>The repository root, found by walking up to the solution file.</summary>
    public static string RepoRoot { get; } = FindRoot();

    public static string Dir { get; } = Resolve();

    static string Resolve()
    {
        var env = Environment.GetEnvironmentVariable("VRFT_GOLDEN_DIR");
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        return Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures", "hf-golden"));
    }

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VisualRft.Interactive.sln"))) return d.FullName;
        throw new InvalidOperationException("cannot find VisualRft.Interactive.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>Loads TorchSharp (with the Debian 12 fix) before any test can touch a torch static.</summary>
static class TestModuleSetup
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void LoadTorch() => VisualRft.Torch.TorchRuntime.EnsureLoaded();
}
