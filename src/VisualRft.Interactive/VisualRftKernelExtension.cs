using Microsoft.DotNet.Interactive;

namespace VisualRft.Interactive;

/// <summary>Loaded by the kernel when the package is referenced with <c>#r "nuget: VisualRft.Interactive"</c>.</summary>
public sealed class VisualRftKernelExtension : IKernelExtension
{
    public Task OnLoadAsync(Kernel kernel)
    {
        Load(kernel);
        return Task.CompletedTask;
    }

    /// <summary>Registers the package's magic commands and formatters; the tests call it directly.</summary>
    public static void Load(Kernel kernel)
    {
        KernelInvocationContext.Current?.DisplayAs(
            $"VisualRft.Interactive {typeof(VisualRftKernelExtension).Assembly.GetName().Version} loaded.", "text/markdown");
    }
}
