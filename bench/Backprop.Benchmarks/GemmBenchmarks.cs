using BenchmarkDotNet.Attributes;
using Backprop.Engine;

namespace Backprop.Benchmarks;

/// <summary>
/// The three products of a training step at the shapes of the reference nets (batch 256), naive
/// (<see cref="ReferenceGemm"/>) against fast (<see cref="Gemm"/>), with OpenBLAS's sgemm as the yardstick.
/// </summary>
[ShortRunJob]
public class GemmBenchmarks : IFlopCount
{
    private float[] _a = [], _b = [], _c = [];

    /// <summary>"product m×n×k": net = o·Wᵀ (forward), Δ·W (backward), Δᵀ·o (weight gradient, chunks of 16).</summary>
    [Params(
        "forward 256x30x784", "gradient 30x784x256",
        "forward 256x256x784", "gradient 256x784x256", "backward 256x256x128",
        "forward 256x1024x1024", "backward 256x1024x1024", "gradient 1024x1024x256")]
    public string Shape { get; set; } = "forward 256x30x784";

    private string Product => Shape.Split(' ')[0];
    private int[] Sizes => [.. Shape.Split(' ')[1].Split('x').Select(int.Parse)];
    private int M => Sizes[0];
    private int N => Sizes[1];
    private int K => Sizes[2];

    public double Flops => 2.0 * M * N * K;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        _a = new float[M * K];
        _b = new float[N * K];
        _c = new float[M * N];
        for (var i = 0; i < _a.Length; i++) _a[i] = (float)random.NextDouble() - 0.5f;
        for (var i = 0; i < _b.Length; i++) _b[i] = (float)random.NextDouble() - 0.5f;
        OpenBlas.SetThreads(1);
    }

    [Benchmark(Baseline = true)]
    public void Naive()
    {
        switch (Product)
        {
            case "forward": ReferenceGemm.MultiplyTransposedB(_a, _b, _c, M, N, K); break;
            case "backward": ReferenceGemm.Multiply(_a, _b, _c, M, N, K); break;
            default: ReferenceGemm.MultiplyTransposedA(_a, _b, _c, M, N, K); break;
        }
    }

    [Benchmark]
    public void Fast()
    {
        switch (Product)
        {
            case "forward": Gemm.MultiplyTransposedB(_a, _b, _c, M, N, K); break;
            case "backward": Gemm.Multiply(_a, _b, _c, M, N, K); break;
            default: Gemm.MultiplyTransposedA(_a, _b, _c, M, N, K, chunkSize: 16); break;
        }
    }

    /// <summary>OpenBLAS sgemm C = A·B of the same size (layouts differ; the work is the same), when installed.</summary>
    [Benchmark]
    public void OpenBlasSgemm()
    {
        if (OpenBlas.IsAvailable) OpenBlas.Multiply(_a, _b, _c, M, N, K);
    }
}
