using System.IO.Compression;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Formatting;
using VisualRft.Runner;

namespace VisualRft.Runner.Tests;

/// <summary>
/// A <c>#r "nuget: …"</c> for any other package goes through NuGet, and the kernel extension that package ships under
/// <c>interactive-extensions/dotnet</c> is loaded, as the stock kernel does. The package is made here: one
/// <c>IKernelExtension</c> compiled with Roslyn, zipped as a .nupkg into a local feed, restored into a private NuGet folder.
/// </summary>
public sealed class ExtensionLoadingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("vrft-ext-").FullName;
    readonly string? _nugetPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("NUGET_PACKAGES", _nugetPackages);
        Formatter.ResetToDefault();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_restored_packages_kernel_extension_is_loaded()
    {
        var feed = Directory.CreateDirectory(Path.Combine(_dir, "feed")).FullName;
        WritePackage(feed, "Probe.Extension", "1.0.0", """
            public sealed class ProbeExtension : Microsoft.DotNet.Interactive.IKernelExtension
            {
                public System.Threading.Tasks.Task OnLoadAsync(Microsoft.DotNet.Interactive.Kernel kernel)
                {
                    Microsoft.DotNet.Interactive.KernelInvocationContextExtensions.DisplayAs(
                        Microsoft.DotNet.Interactive.KernelInvocationContext.Current, "probe extension loaded into " + kernel.Name, "text/plain");
                    return System.Threading.Tasks.Task.CompletedTask;
                }
            }
            """);
        // the restore runs `dotnet restore` in a child process, which reads this
        Environment.SetEnvironmentVariable("NUGET_PACKAGES", Path.Combine(_dir, "packages"));
        var notebook = Path.Combine(_dir, "probe.dib");
        File.WriteAllText(notebook, $"#!csharp\n\n#i \"nuget: {feed}\"\n#r \"nuget: Probe.Extension, 1.0.0\"\n\n#!csharp\n\nProbe.Marker.Value\n");

        var run = await NotebookRunner.RunAsync(notebook, TextWriter.Null);

        Assert.True(run.Succeeded, run.Summary());
        var outputs = run.Document.Elements.SelectMany(e => e.Outputs).ToList();
        var texts = outputs.OfType<DisplayElement>().SelectMany(d => d.Data.Values)
            .Concat(outputs.OfType<ReturnValueElement>().SelectMany(r => r.Data.Values)).Select(v => v.ToString()).ToList();
        Assert.Contains("probe extension loaded into .NET", texts);
        Assert.Contains(texts, t => t!.Contains("probe marker"));   // the package's lib/ assembly is referenced too
        Assert.True(Directory.Exists(Path.Combine(_dir, "packages", "probe.extension", "1.0.0")));
    }

    static void WritePackage(string feed, string id, string version, string extensionSource)
    {
        var references = new[] { typeof(object), typeof(Kernel), typeof(Formatter), typeof(Enumerable) }
            .Select(t => MetadataReference.CreateFromFile(t.Assembly.Location))
            .Concat(Directory.GetFiles(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "System.Runtime.dll").Select(p => MetadataReference.CreateFromFile(p)));
        byte[] Compile(string name, string source)
        {
            var compilation = CSharpCompilation.Create(name, [CSharpSyntaxTree.ParseText(source)], references,
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
            using var dll = new MemoryStream();
            var result = compilation.Emit(dll);
            Assert.True(result.Success, string.Join("\n", result.Diagnostics));
            return dll.ToArray();
        }
        using var zip = ZipFile.Open(Path.Combine(feed, $"{id}.{version}.nupkg"), ZipArchiveMode.Create);
        void Add(string path, byte[] content)
        {
            using var entry = zip.CreateEntry(path).Open();
            entry.Write(content);
        }
        Add($"{id}.nuspec", System.Text.Encoding.UTF8.GetBytes(
            $"<?xml version=\"1.0\"?><package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\"><metadata>"
            + $"<id>{id}</id><version>{version}</version><authors>tests</authors><description>probe</description></metadata></package>"));
        Add($"lib/net10.0/{id}.dll", Compile(id, "namespace Probe { public static class Marker { public const string Value = \"probe marker\"; } }"));
        Add($"interactive-extensions/dotnet/{id}.Extension.dll", Compile(id + ".Extension", extensionSource));
    }
}
