using VisualRft.Cli;

// Every command, its errors reported as one line (see VrftCommandLine).
return VrftCommandLine.Run(args);
