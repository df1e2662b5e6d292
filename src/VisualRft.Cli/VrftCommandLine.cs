using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using System.Text.Json;
using VisualRft.IO;

namespace VisualRft.Cli;

/// <summary>
/// The <c>vrft</c> command tree, and the one place where its errors are reported.
/// </summary>
/// <remarks>
/// <para><b>Adding a command:</b> put its <c>Create()</c> in the list in <see cref="Create"/>; nothing else. Every
/// command's action is wrapped by <see cref="Guard"/>: an exception that escapes it becomes ONE line on stderr,
/// <c>vrft &lt;command&gt; [&lt;subcommand&gt;]: &lt;message&gt;</c>, and a non-zero exit code (<see cref="ExitCodes"/>); the stack trace
/// is printed only with <c>--verbose</c>. So a command does not catch and print errors itself: it throws, with a
/// message that names the file, the key (or the option) and the problem —
/// <see cref="InvalidDataException"/> for an input file or folder whose content is wrong,
/// <see cref="FileNotFoundException"/>/<see cref="DirectoryNotFoundException"/> for one that is missing,
/// <see cref="OptionException"/> (via <see cref="OptionChecks"/>) for a bad option value. Check option values and
/// sizes before doing expensive work.</para>
/// </remarks>
public static class VrftCommandLine
{
    /// <summary>Exit codes of every command.</summary>
    public static class ExitCodes
    {
        public const int Ok = 0;
        /// <summary>An option or argument is invalid (also System.CommandLine's own parse errors).</summary>
        public const int Usage = 1;
        /// <summary>An input file, folder or its content is missing or invalid.</summary>
        public const int Input = 2;
        /// <summary>The machine lacks the memory (or disk) the work needs.</summary>
        public const int Resources = 3;
        /// <summary>A notebook cell failed (<c>vrft run</c>; the cells after it were not run).</summary>
        public const int NotebookFailed = 4;
        /// <summary>The reader of standard output went away (EPIPE, <c>vrft score … | head -1</c>): the command stopped. The
        /// code a shell reports for a process ended by SIGPIPE, which .NET ignores.</summary>
        public const int OutputClosed = 141;
        /// <summary>Interrupted with Ctrl-C (<c>vrft run</c> cancels the running cell and writes what ran).</summary>
        public const int Interrupted = 130;
        /// <summary>An error the code does not explain: a bug (details with --verbose).</summary>
        public const int Internal = 70;
    }

    /// <summary>The root command with every <c>vrft</c> command, each guarded, and the global <c>--verbose</c>.</summary>
    public static RootCommand Create()
    {
        var verbose = new Option<bool>("--verbose") { Description = "print the stack trace of an error", Recursive = true };
        var root = new RootCommand("vrft: Visual-RFT from the command line")
        {
            QuickstartCommand.Create(),
            ScoreCommand.Create(),
            ServeRewardsCommand.Create(),
            ExportCommand.Create(),
            RolloutsCommand.Create(),
            PretrainTinyCommand.Create(),
            InfoCommand.Create(),
            PlanCommand.Create(),
            RunCommand.Create(),
            EvalCommand.Create(),
            TableCommand.Create(),
            DownloadCommand.Create(),
        };
        root.Options.Add(verbose);
        Guard(root, verbose);
        return root;
    }

    /// <summary>
    /// Parses and runs <paramref name="args"/> (the entry point of <c>vrft</c>). A command line that does not parse
    /// (unknown option, missing required one, a value of the wrong type) is reported in the same one-line form, exit code
    /// <see cref="ExitCodes.Usage"/>, pointing to <c>--help</c> instead of printing it.
    /// </summary>
    public static int Run(string[] args, InvocationConfiguration? configuration = null)
    {
        configuration ??= new InvocationConfiguration();
        var parse = Create().Parse(args);
        if (parse.Errors.Count == 0) return parse.Invoke(configuration);
        var name = CommandPath(parse);
        configuration.Error.WriteLine($"{name}: {OneLine(string.Join(" ", parse.Errors.Select(e => e.Message)))} (see {name} --help)");
        return ExitCodes.Usage;
    }

    /// <summary>Wraps the action of <paramref name="command"/> and of all its subcommands.</summary>
    public static void Guard(Command command, Option<bool> verbose)
    {
        command.Action = command.Action switch
        {
            SynchronousCommandLineAction a and not GuardedAction => new GuardedAction(a, verbose),
            AsynchronousCommandLineAction a and not GuardedAsyncAction => new GuardedAsyncAction(a, verbose),
            var a => a,
        };
        foreach (var sub in command.Subcommands) Guard(sub, verbose);
    }

    sealed class GuardedAction(SynchronousCommandLineAction inner, Option<bool> verbose) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parse)
        {
            try { return inner.Invoke(parse); }
            catch (Exception e) { return Report(parse, e, verbose); }
        }
    }

    sealed class GuardedAsyncAction(AsynchronousCommandLineAction inner, Option<bool> verbose) : AsynchronousCommandLineAction
    {
        public override async Task<int> InvokeAsync(ParseResult parse, CancellationToken cancellation = default)
        {
            try { return await inner.InvokeAsync(parse, cancellation); }
            catch (Exception e) { return Report(parse, e, verbose); }
        }
    }

    /// <summary>Writes the one line for <paramref name="error"/> (and the trace with --verbose); returns the exit code.</summary>
    static int Report(ParseResult parse, Exception error, Option<bool> verbose)
    {
        var e = Unwrap(error);
        var (code, message) = e switch
        {
            OptionException => (ExitCodes.Usage, e.Message),
            Torch.LibTorchBackendException => (ExitCodes.Input, e.Message),
            InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
                or JsonException or NotSupportedException or PathTooLongException => (ExitCodes.Input, e.Message),
            OutOfMemoryException or InsufficientMemoryException => (ExitCodes.Resources, "out of memory: " + e.Message),
            IOException => (ExitCodes.Input, e.Message),   // includes disk full: the message says which
            OperationCanceledException => (ExitCodes.Internal, "cancelled"),
            _ => (ExitCodes.Internal, $"internal error ({e.GetType().Name}): {e.Message}"
                + (parse.GetValue(verbose) ? "" : " (run with --verbose for the stack trace)")),
        };
        var err = parse.InvocationConfiguration.Error;
        err.WriteLine($"{CommandPath(parse)}: {OneLine(message)}");
        if (parse.GetValue(verbose)) err.WriteLine(error.ToString());
        return code;
    }

    /// <summary>The command as typed, subcommands included (<c>vrft eval coco</c>, not <c>vrft coco</c>, which does not exist).</summary>
    static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(result.Command is RootCommand ? "vrft" : result.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>The exception that says what went wrong, under the wrappers that reflection, type initialisers and
    /// tasks put around it.</summary>
    static Exception Unwrap(Exception e)
    {
        while (e.InnerException is { } inner
               && (e is TargetInvocationException or TypeInitializationException || e is AggregateException { InnerExceptions.Count: 1 }))
            e = inner;
        return e;
    }

    /// <summary>Messages become one line of bounded length, whatever they quote.</summary>
    static string OneLine(string message) =>
        Excerpt.Of(string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)), 2000);
}

/// <summary>An option (or argument) value that cannot be used; the message names the option.</summary>
public sealed class OptionException(string option, string problem) : Exception($"option {option}: {problem}")
{
    public string Option { get; } = option;
}

/// <summary>Checks of option values, done before any work, with errors that name the option.</summary>
public static class OptionChecks
{
    /// <summary>The value of an integer option, which must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static int InRange(ParseResult parse, Option<int> option, int min, int max, string? why = null)
    {
        int v = parse.GetValue(option);
        if (v < min || v > max)
            throw new OptionException(option.Name, $"must be between {min:N0} and {max:N0}{(why is null ? "" : $" ({why})")}, got {v:N0}");
        return v;
    }

    /// <summary>
    /// The folder an option names for output, created now and written to once (a probe file, deleted at once), so that a
    /// file in its place, a path that cannot be created and a folder this process cannot write into are found before the
    /// work rather than after it.
    /// </summary>
    public static string OutputFolder(string option, DirectoryInfo folder)
    {
        var path = folder.FullName;
        if (File.Exists(path)) throw new OptionException(option, $"'{path}' is a file, not a folder");
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new OptionException(option, $"cannot create '{path}': {e.Message}"); }
        Probe(option, path, path);
        return path;
    }

    /// <summary>The file an option names for output: not a folder, its folder created and writable (checked as for
    /// <see cref="OutputFolder"/>); the file itself is written later, atomically.</summary>
    public static string OutputFile(string option, FileInfo file)
    {
        var path = file.FullName;
        if (Directory.Exists(path)) throw new OptionException(option, $"'{path}' is a folder, not a file");
        var folder = Path.GetDirectoryName(path)!;
        if (File.Exists(folder)) throw new OptionException(option, $"'{folder}' is a file, not a folder");
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new OptionException(option, $"cannot create '{folder}': {e.Message}"); }
        Probe(option, folder, path);
        return path;
    }

    static void Probe(string option, string folder, string what)
    {
        var probe = Path.Combine(folder, $".vrft-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try { using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { } }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the system's message names the probe file, which the user never asked for; "not found" for a file being
            // created means the folder takes no new files (/proc, a folder removed meanwhile)
            var why = e switch
            {
                UnauthorizedAccessException => "permission denied",
                FileNotFoundException or DirectoryNotFoundException => "no new file can be created there",
                _ => e.Message.Replace(probe, folder, StringComparison.Ordinal),
            };
            throw new OptionException(option, $"cannot write '{what}' ({why})");
        }
    }

    /// <summary>The value of a floating-point option, which must be finite and positive.</summary>
    public static double FinitePositive(ParseResult parse, Option<double> option)
    {
        double v = parse.GetValue(option);
        if (!double.IsFinite(v) || v <= 0) throw new OptionException(option.Name, $"must be a finite positive number, got {v}");
        return v;
    }
}
