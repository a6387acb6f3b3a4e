using System.CommandLine;
using Backprop.Coordinator.Training;

namespace Backprop.Coordinator.Cli;

/// <summary>The <c>backprop</c> command line: parses, runs, and turns user errors into one line and an exit code.</summary>
public static class CommandLine
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>The run failed (for example training diverged).</summary>
    public const int Failed = 1;
    /// <summary>Bad input: an option, a file, a data set.</summary>
    public const int BadInput = 2;
    /// <summary>Interrupted (Ctrl-C / SIGINT).</summary>
    public const int Interrupted = 130;

    /// <summary>Runs the command line; with no arguments, trains on the embedded digits.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Backprop.Distributed: trains multi-layer perceptrons with backpropagation, data-parallel over actors.")
        {
            new TrainCommand().Build(),
            new EvalCommand().Build(),
            new BenchCommand().Build(),
        };
        if (args.Length == 0) args = ["train"];

        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var e in result.Errors) error.WriteLine($"error: {e.Message}");
            error.WriteLine($"Run '{RootName} {(result.CommandResult.Command == root ? "" : result.CommandResult.Command.Name + " ")}--help' for the options.");
            return BadInput;
        }
        try
        {
            return result.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (InvalidInputException e)
        {
            error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
        catch (Exception e) when (e is TrainingDivergedException or Actors.TrainingFailedException)
        {
            error.WriteLine($"error: {e.Message}");
            return Failed;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("error: interrupted before training finished");
            return Interrupted;
        }
    }

    private const string RootName = "backprop";
}
