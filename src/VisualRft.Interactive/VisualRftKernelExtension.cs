using System.Net;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Torch;
using VisualRft.Views;

namespace VisualRft.Interactive;

/// <summary>Loaded by the kernel when the package is referenced with <c>#r "nuget: VisualRft.Interactive"</c>.</summary>
public sealed class VisualRftKernelExtension : IKernelExtension
{
    public Task OnLoadAsync(Kernel kernel)
    {
        Load(kernel);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Loads torch (the package's own libtorch, whatever the system has), registers the views as formatters and the magic
    /// commands, and shows a banner that also carries plotly.js once, so that every later chart in the notebook draws
    /// with the network off. The tests and the notebook runner call it directly.
    /// </summary>
    public static void Load(Kernel kernel)
    {
        TorchRuntime.EnsureLoaded();
        Formatters.Register();
        lock (Loaded)
            if (!Loaded.TryGetValue(kernel, out _))
            {
                MagicCommands.Add(kernel);
                Loaded.Add(kernel, new object());
            }
        KernelInvocationContext.Current?.DisplayAs(BannerHtml(), HtmlFormatter.MimeType);
        KernelInvocationContext.Current?.DisplayAs(BannerText(), PlainTextFormatter.MimeType);
    }

    // A second #r of the package (a re-run cell) shows the banner again but must not add the commands twice.
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Kernel, object> Loaded = new();

    static string Version => typeof(VisualRftKernelExtension).Assembly.GetName().Version?.ToString(3) ?? "?";

    static string BannerText() =>
        $"VisualRft.Interactive {Version} loaded — {TorchRuntime.Describe()}. Magic commands: {string.Join(", ", MagicCommands.Usage.Select(u => u.Name))} (add -h for help).";

    static string BannerHtml() =>
        "<div class=\"vrft-banner\" style=\"font-family:system-ui,sans-serif;font-size:13px;border-left:4px solid #0969da;padding:4px 10px;background:#f6f8fa\">"
        + $"<b>VisualRft.Interactive {Version}</b> loaded — {WebUtility.HtmlEncode(TorchRuntime.Describe())}; plotly.js {PlotlyJs.Version} embedded (charts draw offline)."
        + "<br>Magic commands: " + string.Join(" · ", MagicCommands.Usage.Select(u => $"<code title=\"{WebUtility.HtmlEncode(u.Usage)}\">{u.Name}</code>"))
        + " — e.g. <code>#!vrft-data shapes-detection --shots 4</code>.</div>"
        + PlotlyJs.ScriptTag;
}
