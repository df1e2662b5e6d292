using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.PackageManagement;
using VisualRft.Interactive;

namespace VisualRft.Runner;

/// <summary>
/// The kernel a notebook runs in: a <see cref="CompositeKernel"/> with a C# kernel that understands <c>#r "nuget: …"</c>,
/// loads the kernel extensions of the packages it restores (what the stock tool does and the library does not; platform-notes.md
/// §3–§4), and hosts this package itself: the extension is loaded once, before the first cell, and a notebook's
/// <c>#r "nuget: VisualRft.Interactive"</c> is answered with the assemblies this process already runs instead of a second,
/// possibly different copy from NuGet.
/// </summary>
public static class NotebookKernel
{
    /// <summary>The packages this process hosts; a <c>#r "nuget: …"</c> for one of them downloads nothing.</summary>
    public static IReadOnlyList<string> HostedPackages { get; } = ["VisualRft.Interactive", "VisualRft"];

    /// <summary>The hosted package's version, as a package reference would name it (informational version without build metadata).</summary>
    public static string HostedVersion { get; } = (typeof(VisualRftKernelExtension).Assembly
        .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown").Split('+')[0];

    public static CompositeKernel Create()
    {
        var csharp = new CSharpKernel()
            .UseNugetDirective((kernel, references) =>
            {
                kernel.AddAssemblyReferences(references.SelectMany(r => r.AssemblyPaths));
                return Task.CompletedTask;
            })
            .UseKernelHelpers()
            .UseValueSharing();
        // What `#r "nuget: VisualRft.Interactive"` would have referenced: the extension and everything it builds on.
        csharp.AddAssemblyReferences(HostAssemblyPaths());
        csharp.AddMiddleware(AnswerHostedPackages);
        PassEachReferenceOnce(csharp);
        KeepLanguageServicesToTheLastCell(csharp);

        var composite = new CompositeKernel { csharp };
        composite.DefaultKernelName = csharp.Name;
        composite.UseImportMagicCommand();
        LoadExtensionBeforeFirstCell(composite);
        LoadExtensionsOfRestoredPackages(composite);
        return composite;
    }

    /// <summary>The kernel's script options (<c>CSharpKernel._scriptOptions</c>, private in Microsoft.DotNet.Interactive.CSharp
    /// 1.0.0-beta.26120.1); null where a later version renamed it, and then nothing is trimmed (RunnerMemoryTests fails).</summary>
    static readonly FieldInfo? ScriptOptionsField =
        typeof(CSharpKernel).GetField("_scriptOptions", BindingFlags.NonPublic | BindingFlags.Instance) is { } f
        && f.FieldType == typeof(ScriptOptions) ? f : null;

    /// <summary>
    /// The stock kernel hands every submission all its references again (about 50 here), and Roslyn appends the previous
    /// submission's explicit references to each new one without removing duplicates (CommonReferenceManager: "Add all
    /// explicit references of the previous script compilation"), so submission n keeps n × 50 references and a map sized for
    /// them: memory grew quadratically, 1.0 GB of heap after 1,000 trivial cells. A reference is inherited by every later
    /// submission once one submission compiled with it, so after each command the options keep only references no
    /// compiled submission had yet (a <c>#r</c> that a failed cell added stays until a cell compiles).
    /// </summary>
    static void PassEachReferenceOnce(CSharpKernel csharp)
    {
        if (ScriptOptionsField is null) return;
        var compiled = new HashSet<MetadataReference>(ReferenceEqualityComparer.Instance);
        Script? last = null;
        csharp.AddMiddleware(async (command, context, next) =>
        {
            await next(command, context);
            if (csharp.ScriptState?.Script is not { } script || ReferenceEquals(script, last)) return;
            for (var s = script; s is not null && !ReferenceEquals(s, last); s = s.Previous)
                compiled.UnionWith(s.Options.MetadataReferences);
            last = script;
            var options = (ScriptOptions)ScriptOptionsField.GetValue(csharp)!;
            ScriptOptionsField.SetValue(csharp, options.WithReferences(options.MetadataReferences.Where(r => !compiled.Contains(r))));
        });
    }

    /// <summary>The kernel's language-service workspace (<c>CSharpKernel._workspace</c>, an internal <c>InteractiveWorkspace</c>
    /// in Microsoft.DotNet.Interactive.CSharp 1.0.0-beta.26120.1), its two live project ids, and <c>Workspace.SetCurrentSolution</c>;
    /// null where a later version renamed one, and then nothing is trimmed (RunnerMemoryTests fails).</summary>
    static readonly (FieldInfo Workspace, FieldInfo Previous, FieldInfo Working, MethodInfo SetSolution)? WorkspaceMembers = FindWorkspaceMembers();

    static (FieldInfo, FieldInfo, FieldInfo, MethodInfo)? FindWorkspaceMembers()
    {
        const BindingFlags flags = BindingFlags.NonPublic | BindingFlags.Instance;
        if (typeof(CSharpKernel).GetField("_workspace", flags) is not { } workspace || !typeof(Workspace).IsAssignableFrom(workspace.FieldType)) return null;
        var previous = workspace.FieldType.GetField("_previousSubmissionProjectId", flags);
        var working = workspace.FieldType.GetField("_workingProjectId", flags);
        var set = typeof(Workspace).GetMethod("SetCurrentSolution", flags, [typeof(Solution)]);
        return previous?.FieldType == typeof(ProjectId) && working?.FieldType == typeof(ProjectId) && set is not null
            ? (workspace, previous, working, set) : null;
    }

    /// <summary>
    /// The stock kernel feeds its language-service workspace (completions, hover, signature help, diagnostics requests) one
    /// project per successful submission, each referencing the one before it and carrying the full reference set (~200
    /// references); Roslyn's project dependency graph then caches every project's transitive references, so the workspace
    /// grows with the square of the cell count (64 MB of <c>ImmutableHashSet&lt;ProjectId&gt;</c> nodes after 1,500 cells,
    /// dotnet-gcdump). The runner executes cells and never asks for a completion, so after each command the workspace keeps
    /// only the last submission's project and the working project the next request would fork: a later cell still sees every
    /// earlier declaration, because execution binds against the script chain, not the workspace.
    /// </summary>
    static void KeepLanguageServicesToTheLastCell(CSharpKernel csharp)
    {
        if (WorkspaceMembers is not var (workspaceField, previousField, workingField, setSolution)) return;
        csharp.AddMiddleware(async (command, context, next) =>
        {
            await next(command, context);
            if (workspaceField.GetValue(csharp) is not Workspace workspace) return;
            var keep = new[] { previousField.GetValue(workspace), workingField.GetValue(workspace) };
            var solution = workspace.CurrentSolution;
            var stale = solution.ProjectIds.Where(id => !keep.Contains(id)).ToList();
            if (stale.Count == 0) return;
            // The kept projects' references to removed ones dangle; only a language-service request would compile them,
            // and it then sees the last cell's declarations alone.
            foreach (var id in stale) solution = solution.RemoveProject(id);
            setSolution.Invoke(workspace, [solution]);
        });
    }

    static async Task AnswerHostedPackages(KernelCommand command, KernelInvocationContext context, KernelPipelineContinuation next)
    {
        if (command is AddPackage add && HostedPackages.Contains(add.PackageName, StringComparer.OrdinalIgnoreCase))
        {
            var requested = string.IsNullOrWhiteSpace(add.PackageVersion) || add.PackageVersion == HostedVersion
                ? "" : $" (the notebook asks for {add.PackageVersion})";
            context.DisplayAs($"{add.PackageName} {HostedVersion}{requested}: the copy that runs this notebook (vrft run), not a download",
                "text/plain");
            return;
        }
        await next(command, context);
    }

    /// <summary>
    /// Loads the extension in the first command's context, so its banner shows under the first cell as it would under the
    /// notebook's <c>#r</c> in Jupyter, and a notebook without that line still gets the views.
    /// </summary>
    static void LoadExtensionBeforeFirstCell(CompositeKernel composite)
    {
        var loaded = 0;
        composite.AddMiddleware(async (command, context, next) =>
        {
            if (Interlocked.Exchange(ref loaded, 1) == 0)
                VisualRftKernelExtension.Load(composite);
            await next(command, context);
        });
    }

    /// <summary>The stock tool's loader (dotnet-interactive's <c>PackageDirectoryExtensionLoader</c>), which the library lacks:
    /// after a command restored packages, run the <c>IKernelExtension</c>s and <c>extension.dib</c> each one ships.</summary>
    static void LoadExtensionsOfRestoredPackages(CompositeKernel composite)
    {
        var pending = new ConcurrentQueue<PackageAdded>();
        var seen = new ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
        composite.RegisterForDisposal(composite.KernelEvents.Subscribe(e =>
        {
            if (e is PackageAdded added) pending.Enqueue(added);
        }));
        composite.AddMiddleware(async (command, context, next) =>
        {
            await next(command, context);
            while (pending.TryDequeue(out var added))
            {
                var folder = new DirectoryInfo(Path.Combine(added.PackageReference.PackageRoot, "interactive-extensions", "dotnet"));
                if (!folder.Exists || !seen.TryAdd(folder.FullName, true)) continue;
                foreach (var dll in folder.GetFiles("*.dll"))
                {
                    var assembly = AssemblyLoadContext.Default.LoadFromAssemblyPath(dll.FullName);
                    foreach (var type in assembly.ExportedTypes.Where(t => t is { IsAbstract: false, IsInterface: false } && typeof(IKernelExtension).IsAssignableFrom(t)))
                    {
                        var extension = (IKernelExtension)Activator.CreateInstance(type)!;
                        await extension.OnLoadAsync(composite);
                        context.Publish(new KernelExtensionLoaded(extension, context.Command));
                    }
                }
                var script = new FileInfo(Path.Combine(folder.FullName, "extension.dib"));
                if (script.Exists) await composite.LoadAndRunInteractiveDocument(script, context.Command);
            }
        });
    }

    /// <summary>The extension's assembly and, transitively, the non-framework assemblies it references, minus the kernel's own.</summary>
    static IEnumerable<string> HostAssemblyPaths()
    {
        var framework = RuntimeEnvironment.GetRuntimeDirectory();
        var found = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        // Both packages' entry assemblies: the extension need not reference the core for a notebook to use it.
        var queue = new Queue<Assembly>([typeof(VisualRftKernelExtension).Assembly, typeof(VisualRft.Torch.TorchRuntime).Assembly]);
        while (queue.TryDequeue(out var assembly))
        {
            var name = assembly.GetName().Name!;
            if (found.ContainsKey(name) || string.IsNullOrEmpty(assembly.Location) || assembly.Location.StartsWith(framework, StringComparison.Ordinal)
                || name.StartsWith("Microsoft.DotNet.Interactive", StringComparison.Ordinal) || name.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal))
                continue;
            found[name] = assembly.Location;
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                try { queue.Enqueue(Assembly.Load(reference)); }
                catch (FileNotFoundException) { }   // an optional dependency the host does not ship: a notebook cannot use it either
            }
        }
        return found.Values;
    }
}
