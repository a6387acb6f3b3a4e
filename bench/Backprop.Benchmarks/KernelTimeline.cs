using System.Diagnostics;
using System.Runtime.InteropServices;
using Backprop.Engine;

namespace Backprop.Benchmarks;

/// <summary>
/// The micro-kernels of <see cref="MicroKernelBenchmarks"/> (every operand in L1) taking turns in short
/// rounds for a while, reported window by window: how each one's speed moves when the machine's state
/// moves. A BenchmarkDotNet run times one kernel after the other, minutes apart, so it cannot show that.
/// <c>dotnet run -c Release --project bench/Backprop.Benchmarks -- timeline [seconds]</c>.
/// </summary>
internal static unsafe class KernelTimeline
{
    private const int K = 256, Repeats = 1000, RoundsPerWindow = 500;

    public static void Run(double seconds)
    {
        if (!(seconds > 0)) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "the timeline needs a positive number of seconds");
        if (!Kernels.WideSupported) throw new PlatformNotSupportedException("the timeline compares the AVX2 + FMA kernels");
        const int width = Kernels.WideWidth;
        var a = Alloc(Kernels.TileRows * K);
        var b = Alloc(width * K);
        var c = Alloc(Kernels.TileRows * width);
        var stack = Alloc(16 * Kernels.TileRows * width);
        var levels = (int*)NativeMemory.Alloc(16 * sizeof(int));
        var random = new Random(1);
        for (var i = 0; i < Kernels.TileRows * K; i++) a[i] = (float)random.NextDouble() - 0.5f;
        for (var i = 0; i < width * K; i++) b[i] = (float)random.NextDouble() - 0.5f;
        (string Name, Action Body)[] kernels =
        [
            ("forward tile", () => { for (var r = 0; r < Repeats; r++) Kernels.Tile(width, K, a, a + 1, a + 2, a + 3, a + 4, a + 5, Kernels.TileRows, b, c, width); }),
            ("chunk pairs", () => { for (var r = 0; r < Repeats; r++) Kernels.TreeTile(width, K, 16, a, b, c, width, stack, levels); }),
            ("chunk by chunk", () => { for (var r = 0; r < Repeats; r++) ChunkByChunkKernel.TreeTile16(K, 16, a, b, c, width, stack, levels); }),
            ("no tree (chunk 256)", () => { for (var r = 0; r < Repeats; r++) Kernels.TreeTile(width, K, 256, a, b, c, width, stack, levels); }),
        ];
        foreach (var (_, body) in kernels) for (var w = 0; w < 200; w++) body();
        var flops = 2.0 * Kernels.TileRows * width * K * Repeats;
        Console.WriteLine($"GFLOP/s of each kernel per window of {RoundsPerWindow} rounds (medians); a round runs every kernel once, {Repeats} tiles of k = {K} each");
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
            var gflops = times.Select(t => flops / Median(t) / 1e9).ToArray();
            ratios.Add(gflops[1] / gflops[2]);
            Console.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}  " + string.Join("  ", gflops.Select(g => $"{g,19:F1}")) + $"  {ratios[^1],16:F3}");
        }
        Console.WriteLine($"{ratios.Count} windows; chunk pairs / chunk by chunk from {ratios.Min():F3} to {ratios.Max():F3}, median {Median(ratios.ToArray()):F3}");
        foreach (var p in new[] { a, b, c, stack }) NativeMemory.AlignedFree(p);
        NativeMemory.Free(levels);
    }

    private static double Median(double[] xs)
    {
        var s = xs.Order().ToArray();
        return (s[(s.Length - 1) / 2] + s[s.Length / 2]) / 2;
    }

    private static float* Alloc(int count)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        new Span<float>(p, count).Clear();
        return p;
    }
}
