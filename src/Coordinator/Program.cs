using Backprop.Coordinator.Cli;

return CommandLine.Run(args, Console.Out, Console.Error);
