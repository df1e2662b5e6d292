using System.CommandLine;
using VisualRft.Cli;

var root = new RootCommand("vrft: Visual-RFT from the command line")
{
    QuickstartCommand.Create(),
    ScoreCommand.Create(),
    PretrainTinyCommand.Create(),
    InfoCommand.Create(),
    RunCommand.Create(),
};
// `vrft run` handles Ctrl-C itself: it cancels the running cell and still writes what ran, which takes longer than the
// parser's default two-second grace period.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
