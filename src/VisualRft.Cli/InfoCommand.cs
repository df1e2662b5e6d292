using System.CommandLine;
using VisualRft.Torch;

namespace VisualRft.Cli;

/// <summary><c>vrft info</c>: versions, where libtorch was loaded from, device and threads, where the interop shims lie — the first thing to check when
/// torch does not load or runs slowly.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Versions, the libtorch this process loaded, device and threads");
        cmd.SetAction(parse =>
        {
            var o = parse.InvocationConfiguration.Output;
            o.WriteLine($"VisualRft {typeof(TorchRuntime).Assembly.GetName().Version}");
            o.WriteLine(TorchRuntime.Describe());
            o.WriteLine($"TorchSharp native shim: {string.Join(", ", NativeShim.Mapped().DefaultIfEmpty(TorchRuntime.Backend.Shim ?? "TorchSharp's own"))}");
            o.WriteLine($"libtorch_cpu mapped: {string.Join(", ", NativeShim.Mapped("libtorch_cpu.so").DefaultIfEmpty("?"))}");
            o.WriteLine($"reward shims for verl, EasyR1, TRL: {Path.Combine(AppContext.BaseDirectory, "interop")}");
            return 0;
        });
        return cmd;
    }
}
