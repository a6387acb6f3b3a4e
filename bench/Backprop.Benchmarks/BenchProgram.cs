using System.CommandLine;
using System.CommandLine.Parsing;
using Backprop.Benchmarks.Steps;
using Backprop.Benchmarks.Transport;
using Backprop.CommandLine;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Backprop.Benchmarks;

/// <summary>
/// The benchmark program's command line: step (training throughput beside PyTorch and OpenBLAS),
/// timeline (the micro-kernels taking turns), kernels (the BenchmarkDotNet benchmarks) and transport
/// (the tensor-channel transports between two processes).
/// </summary>
internal static class BenchProgram
{
    /// <summary>How users start the program, for the hint under an error.</summary>
    public const string Invocation = "dotnet run -c Release --project bench/Backprop.Benchmarks --";

    /// <summary>Runs the command line and returns the exit code (<see cref="ExitCode"/>).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("The benchmarks of Backprop.Distributed: a training step beside PyTorch and OpenBLAS, the kernels, the kernels' timeline, the tensor-channel transports.")
        {
            new StepCommand().Build(),
            KernelTimeline.Command(),
            Kernels(),
            new TransportCommand().Build(),
        };
        return ProgramRunner.Run(root, Invocation, args, output, error, cancelOnSignal: false);
    }

    /// <summary><c>kernels [BenchmarkDotNet arguments]</c>: BenchmarkDotNet's switcher over this program's benchmarks.</summary>
    private static Command Kernels()
    {
        var arguments = new Argument<string[]>("arguments")
        {
            Description = "BenchmarkDotNet's arguments, such as --filter '*Gemm*' or --list flat (its own help: kernels -- --help)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command("kernels", "Run the BenchmarkDotNet benchmarks: GEMMs, micro-kernels, optimizer, training step")
        {
            arguments,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(result =>
        {
            // Whatever System.CommandLine did not take goes to BenchmarkDotNet, in the order given.
            var given = result.Tokens.SkipWhile(t => t.Type != TokenType.Command).Skip(1)
                .Where(t => t.Type != TokenType.DoubleDash).Select(t => t.Value).ToArray();
            var config = DefaultConfig.Instance.AddColumn(new GflopsColumn());
            var summaries = BenchmarkSwitcher.FromAssembly(typeof(BenchProgram).Assembly).Run(given, config);
            return summaries.Any(s => s.HasCriticalValidationErrors) ? ExitCode.Failed : ExitCode.Ok;
        });
        return command;
    }
}
