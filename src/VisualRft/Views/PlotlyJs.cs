using System.Reflection;

namespace VisualRft.Views;

/// <summary>
/// The plotly.js bundle embedded in this assembly (npm <c>plotly.js-basic-dist-min</c>, MIT: the scatter, bar and pie
/// traces, all the views draw), so that every chart draws with the network off: in a notebook the kernel extension emits it
/// once when it loads — so every saved notebook carries it — and a report inlines it once in its head. Charts never depend
/// on it: each carries a static SVG that the script replaces when <c>window.Plotly</c> exists and has the figure's trace
/// types (a figure from elsewhere, <see cref="Figure.FromJson"/>, may have others).
/// </summary>
public static class PlotlyJs
{
    const string Resource = "VisualRft.Views.plotly.min.js";

    static readonly Lazy<string> Text = new(() =>
    {
        using var stream = typeof(PlotlyJs).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"the assembly lacks its {Resource} resource (a build without the plotly.js fetch)");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>The bundle's version, e.g. "4.1.2".</summary>
    public static string Version { get; } = typeof(PlotlyJs).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "PlotlyJsVersion")?.Value ?? "unknown";

    /// <summary>The minified library (about 1.2 MB).</summary>
    public static string Source => Text.Value;

    /// <summary>A script element that defines <c>window.Plotly</c> unless a page already has it.</summary>
    public static string ScriptTag => "<script type=\"text/javascript\">if (!window.Plotly) {\n" + Source + "\n}</script>";
}
