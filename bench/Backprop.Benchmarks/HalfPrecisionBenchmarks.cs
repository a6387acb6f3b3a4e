using BenchmarkDotNet.Attributes;
using Backprop.Protocol;

namespace Backprop.Benchmarks;

/// <summary>
/// Rounding a gradient of 784-1024-1024-10 (1.86 million values) to half precision, as a worker does
/// for every message with --half-gradients: the vectorized conversion against one cast per value.
/// </summary>
[ShortRunJob]
public class HalfPrecisionBenchmarks
{
    private const int Count = 1_863_690;
    private readonly float[] _values = new float[Count];
    private readonly float[] _rounded = new float[Count];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        for (var i = 0; i < Count; i++) _values[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-8, 4)));
    }

    [Benchmark(Baseline = true)]
    public void Casts()
    {
        for (var i = 0; i < Count; i++) _rounded[i] = (float)(Half)_values[i];
    }

    [Benchmark]
    public FloatTensor RoundedToHalf() => FloatTensor.RoundedToHalf(_values);
}
