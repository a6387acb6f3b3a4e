using System.Diagnostics;
using Backprop.Engine;

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

    public static void Run(double seconds)
    {
        if (!(seconds > 0)) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "the timeline needs a positive number of seconds");
        if (!Kernels.WideSupported) throw new PlatformNotSupportedException("the timeline compares the AVX2 + FMA kernels");
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
        Console.WriteLine($"GFLOP/s of each kernel per window of {RoundsPerWindow} rounds (medians); a round runs every kernel once, as in MicroKernelBenchmarks");
        Console.WriteLine("     s  " + string.Join("  ", kernels.Select(x => $"{x.Name,19}")) + "  pairs / by chunk");
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
            var gflops = times.Select(t => chunk16.Flops / Median(t) / 1e9).ToArray();
            ratios.Add(gflops[1] / gflops[2]);
            Console.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}  " + string.Join("  ", gflops.Select(g => $"{g,19:F1}")) + $"  {ratios[^1],16:F3}");
        }
        Console.WriteLine($"{ratios.Count} windows; chunk pairs / chunk by chunk from {ratios.Min():F3} to {ratios.Max():F3}, median {Median(ratios.ToArray()):F3}");
    }

    private static double Median(double[] xs)
    {
        var s = xs.Order().ToArray();
        return (s[(s.Length - 1) / 2] + s[s.Length / 2]) / 2;
    }
}
