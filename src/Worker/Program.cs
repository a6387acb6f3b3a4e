using Backprop.Worker;

return WorkerCommand.Run(args, Console.Out, Console.Error);
