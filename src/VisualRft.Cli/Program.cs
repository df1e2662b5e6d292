using System.CommandLine;

var root = new RootCommand("vrft: Visual-RFT from the command line");
return root.Parse(args).Invoke();
