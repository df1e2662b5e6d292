using System.CommandLine;
using VisualRft.Cli;

var root = new RootCommand("vrft: Visual-RFT from the command line")
{
    QuickstartCommand.Create(),
    ScoreCommand.Create(),
    PretrainTinyCommand.Create(),
    InfoCommand.Create(),
    EvalCommand.Create(),
    TableCommand.Create(),
    DownloadCommand.Create(),
};
return root.Parse(args).Invoke();
