using System.Runtime.InteropServices;
using TorchSharp;
using VisualRft.GpuBench;
using VisualRft.Torch;
using static TorchSharp.torch;

// The .NET side of bench/gpu (README.md there). `list`: the names of the step's configurations. `config`: the reference
// shape's config.json, which hf_step.py builds its model from. `check`: the tiny model's logits on the CPU and on the
// device (exit 4 when they differ by more than 1e-4). `step CONFIG`: one GRPO step at the reference shape, CONFIG one of
// StepConfig.All; one configuration per process, so that the peak GPU memory of one is not the allocator's cache of
// another. `--cpu` runs on the CPU, `--tiny` at tiny shapes: together they check this program on a machine without a
// GPU. Exit 1: usage; 2: no libtorch or no GPU; 3: out of memory.
const string Usage = "usage: GpuBench list | GpuBench config | GpuBench check [--cpu] | GpuBench step CONFIG [--cpu] [--tiny]"
    + "   (CONFIG: {0}; check ignores --tiny: it always runs the tiny model)";
var configs = string.Join(", ", StepConfig.All.Select(c => c.Name));
var flags = args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).ToHashSet();
var words = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
var unknown = flags.Except(["--cpu", "--tiny"]).FirstOrDefault();
var config = words is ["step", var name] ? StepConfig.All.FirstOrDefault(c => c.Name == name) : null;
if (unknown is not null || !(words is ["check"] or ["config"] or ["list"] || config is not null) || (words is ["config"] or ["list"] && flags.Count > 0))
{
    Console.Error.WriteLine(unknown is not null ? $"unknown option {unknown}"
        : words is ["step", var n] ? $"unknown configuration {n}; expected one of {configs}" : string.Format(Usage, configs));
    return 1;
}

if (words is ["list"])
{
    Console.WriteLine(string.Join(' ', StepConfig.All.Select(c => c.Name)));
    return 0;
}
if (words is ["config"])
{
    Console.WriteLine(Shape.Reference.Config.ToJson().ToJsonString());
    return 0;
}

// The publish carries TorchSharp's managed side only; without a libtorch named, TorchSharp's own search would copy the
// NuGet cache's 600 MB libtorch-cpu next to the app.
if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(LibTorchBackend.LibTorchVariable)))
{
    Console.Error.WriteLine($"{LibTorchBackend.LibTorchVariable} is not set: GpuBench carries no libtorch; run.sh sets it to PyTorch's torch/lib "
        + "(on a build machine: ~/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native)");
    return 2;
}

Device device;
try
{
    TorchRuntime.EnsureLoaded();
    Console.WriteLine(TorchRuntime.Describe());
    var mapped = MappedLibraries().ToList();
    foreach (var library in mapped) Console.WriteLine($"mapped: {library}");
    device = flags.Contains("--cpu") ? CPU : TorchRuntime.DefaultDevice();
    if (device.type != DeviceType.CUDA && !flags.Contains("--cpu"))
        throw new LibTorchBackendException($"no CUDA device is usable ({TorchRuntime.Backend}); run.sh sets VRFT_LIBTORCH to a CUDA PyTorch's torch/lib, or pass --cpu");
}
catch (InvalidOperationException e)   // LibTorchBackendException, or a library the linker refused (named with its reason)
{
    Console.Error.WriteLine(e.Message.ReplaceLineEndings(" "));
    return 2;
}

try
{
    if (words is ["check"])
    {
        var (diff, values) = LogitsCheck.Run(device);
        var agree = diff <= LogitsCheck.Tolerance;
        Console.WriteLine($"tiny model logits, cpu vs {device}: max |difference| {diff:E2} over {values:N0} values; "
            + $"agree within {LogitsCheck.Tolerance:E0}: {(agree ? "yes" : "NO")}");
        return agree ? 0 : 4;
    }
    return StepBench.Run(flags.Contains("--tiny") ? Shape.Tiny : Shape.Reference, config!, device);
}
catch (ExternalException e) when (e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
{
    Console.Error.WriteLine($"{words[^1]}: out of memory on {device}: {e.Message.Split('\n')[0]}");
    return 3;
}

// The libtorch and TorchSharp shim files this process mapped (TorchRuntime refuses a named shim that is not the only one).
static IEnumerable<string> MappedLibraries() =>
    File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6)
        .Select(f => f[5]).Where(p => Path.GetFileName(p) is var n && new[] { "libtorch", "libc10", "libLibTorchSharp" }.Any(x => n.StartsWith(x, StringComparison.Ordinal)))
        .Distinct();
