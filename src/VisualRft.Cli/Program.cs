using System.CommandLine;
using VisualRft.Cli;

var root = new RootCommand("vrft: Visual-RFT from the command line") { ScoreCommand.Create() };
return root.Parse(args).Invoke();
