using System.CommandLine;
using VisualRft.Cli;

// Every command, its errors reported as one line (see VrftCommandLine). `vrft run` handles Ctrl-C itself: it cancels the
// running cell and still writes what ran, which takes longer than the parser's default two-second grace period.
return VrftCommandLine.Run(args, new InvocationConfiguration { ProcessTerminationTimeout = null });
