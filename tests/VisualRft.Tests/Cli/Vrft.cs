using System.CommandLine;
using VisualRft.Cli;

namespace VisualRft.Tests.Cli;

/// <summary>Runs <c>vrft</c> in-process, as the tool's entry point does, capturing what it prints.</summary>
static class Vrft
{
    public static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = VrftCommandLine.Run(args, new InvocationConfiguration { Output = o, Error = e });
        return (code, o.ToString(), e.ToString());
    }
}
