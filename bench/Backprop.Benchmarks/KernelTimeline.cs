using System.CommandLine;
using System.Diagnostics;
using Backprop.CommandLine;
using Backprop.Engine;
using MathNet.Numerics.Statistics;
using Spectre.Console;

namespace Backprop.Benchmarks;

/// <summary>
/// The micro-kernels of <see cref="MicroKernelBenchmarks"/> (every operand in L1) taking turns in short
/// rounds for a while, reported window by window: how each one's speed moves when the machine's state
/// moves. A BenchmarkDotNet run times one kernel after the other, minutes apart, so it cannot show that.
/// <c>dotnet run -c Release --project bench/Backprop.Benchmarks -- timeline [seconds]</c>.
/// </summary>
internal static class KernelTimeline
{
    private const int RoundsPerWindow = 500;

    /// <summary><c>timeline [seconds]</c>.</summary>
    public static Command Command()
    {
        var seconds = new Argument<double>("seconds")
        {
            Description = "How long to run (default 60)",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => 60,
            CustomParser = result =>
            {
                if (result.Tokens.Count == 0) return 60;
                var (value, error) = Parse.PositiveSeconds(result.Tokens[0].Value);
                if (error is not null) result.AddError($"seconds '{result.Tokens[0].Value}': {error}");
                return value;
            },
        };
        var command = new Command("timeline", "Run the micro-kernels in turns and print each one's GFLOP/s window by window") { seconds };
        command.SetAction(result =>
        {
            Run(result.GetValue(seconds), result.InvocationConfiguration.Output);
            return ExitCode.Ok;
        });
        return command;
    }

    public static void Run(double seconds, TextWriter output)
    {
        if (!(seconds > 0)) throw new InvalidInputException("the timeline needs a positive number of seconds");
        if (!Kernels.WideSupported) throw new InvalidInputException("the timeline compares the AVX2 + FMA kernels, and this processor has not got them");
        // The benchmark class's own setup: the same operands, and its check that both tree kernels give the same bits.
        using var chunk16 = new MicroKernelBenchmarks { Chunk = 16 };
        using var chunk256 = new MicroKernelBenchmarks { Chunk = 256 };
        chunk16.Setup();
        chunk256.Setup();
        (string Name, Action Body)[] kernels =
        [
            ("forward tile", chunk16.Tile),
            ("chunk pairs", chunk16.TreeTile),
            ("chunk by chunk", chunk16.ChunkByChunk),
            ("no tree (chunk 256)", chunk256.TreeTile),
        ];
        foreach (var (_, body) in kernels) for (var w = 0; w < 200; w++) body();
        var console = Tables.ConsoleFor(output);
        console.WriteLine($"GFLOP/s of each kernel per window of {RoundsPerWindow} rounds (medians); a round runs every kernel once, as in MicroKernelBenchmarks");
        var table = new StreamingTable(console, [("s", 6), .. kernels.Select(k => (k.Name, 19)), ("pairs / by chunk", 16)]);
        table.WriteHeader();
        var clock = Stopwatch.StartNew();
        var times = kernels.Select(_ => new double[RoundsPerWindow]).ToArray();
        var ratios = new List<double>();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            for (var round = 0; round < RoundsPerWindow; round++)
            {
                for (var i = 0; i < kernels.Length; i++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    kernels[i].Body();
                    times[i][round] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }
            }
            var gflops = times.Select(t => chunk16.Flops / t.Median() / 1e9).ToArray();
            ratios.Add(gflops[1] / gflops[2]);
            table.WriteRow([$"{clock.Elapsed.TotalSeconds:F1}", .. gflops.Select(g => $"{g:F1}"), $"{ratios[^1]:F3}"]);
        }
        console.WriteLine($"{ratios.Count} windows; chunk pairs / chunk by chunk from {ratios.Min():F3} to {ratios.Max():F3}, median {ratios.Median():F3}");
    }
}
