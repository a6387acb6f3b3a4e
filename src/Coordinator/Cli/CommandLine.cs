using System.CommandLine;
using Backprop.CommandLine;
using Backprop.Coordinator.Training;

namespace Backprop.Coordinator.Cli;

/// <summary>The <c>backprop</c> command line: train and eval; with no arguments, trains on the embedded digits.</summary>
public static class CommandLine
{
    /// <summary>Runs the command line and returns the exit code (<see cref="ExitCode"/>).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Backprop.Distributed: trains multi-layer perceptrons with backpropagation, data-parallel over actors.")
        {
            new TrainCommand().Build(),
            new EvalCommand().Build(),
        };
        if (args.Length == 0) args = ["train"];
        return ProgramRunner.Run(root, "backprop", args, output, error, cancelOnSignal: true, typeof(TrainingDivergedException), typeof(Actors.TrainingFailedException));
    }
}
