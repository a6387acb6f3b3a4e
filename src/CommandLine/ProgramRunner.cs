using System.CommandLine;

namespace Backprop.CommandLine;

/// <summary>The exit codes of both programs.</summary>
public static class ExitCode
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>The run failed (training diverged, the coordinator gave up, a worker lost its coordinator).</summary>
    public const int Failed = 1;
    /// <summary>Bad input: an option, a file, a data set.</summary>
    public const int BadInput = 2;
    /// <summary>Interrupted (Ctrl-C / SIGINT).</summary>
    public const int Interrupted = 130;
}

/// <summary>
/// Runs a program's command line the same way for both programs: parse errors and bad input become
/// one line each and exit code 2, a failed run one line and exit code 1, never a stack trace.
/// </summary>
public static class ProgramRunner
{
    /// <summary>
    /// Parses <paramref name="args"/> against <paramref name="root"/> and invokes the chosen action.
    /// <paramref name="failures"/> are the exception types that mean the run itself failed (exit 1).
    /// With <paramref name="cancelOnSignal"/>, SIGINT and SIGTERM cancel the action's token (the
    /// coordinator stops its run); without, they go to the process as usual (a worker node's own shutdown
    /// hook then leaves the cluster gracefully).
    /// </summary>
    public static int Run(RootCommand root, string name, string[] args, TextWriter output, TextWriter error, bool cancelOnSignal, params Type[] failures)
    {
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var e in result.Errors) error.WriteLine($"error: {e.Message}");
            var command = result.CommandResult.Command == root ? "" : result.CommandResult.Command.Name + " ";
            error.WriteLine($"Run '{name} {command}--help' for the options.");
            return ExitCode.BadInput;
        }
        try
        {
            return result.Invoke(new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = cancelOnSignal ? TimeSpan.FromSeconds(2) : null,
            });
        }
        catch (InvalidInputException e)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCode.BadInput;
        }
        catch (Exception e) when (failures.Any(t => t.IsInstanceOfType(e)))
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCode.Failed;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("error: interrupted before training finished");
            return ExitCode.Interrupted;
        }
    }
}
