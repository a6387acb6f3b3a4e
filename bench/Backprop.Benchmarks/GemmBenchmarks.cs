using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Backprop.Engine;

namespace Backprop.Benchmarks;

/// <summary>
/// The three products of a training step at the shapes of the reference nets (batch 256), naive
/// (<see cref="ReferenceGemm"/>) against fast (<see cref="Gemm"/>), with OpenBLAS's sgemm as the yardstick.
/// "Fast" goes through the span API, which packs the weights on every call into pooled memory;
/// "InStep" runs the product as a training step does: weights (or Δᵀ) packed beforehand into aligned
/// buffers, only the product (with its own packing of activations) timed.
/// </summary>
[ShortRunJob]
public unsafe class GemmBenchmarks : IFlopCount, IDisposable
{
    private float[] _a = [], _b = [], _c = [];
    private float* _pa, _pb, _pc, _packed, _scratch, _stack;

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

        // The step's layout: aligned operands, the weights (forward, backward) or Δᵀ (gradient) packed once.
        var width = Kernels.DefaultWidth;
        _pa = Copy(_a);
        _pc = Alloc(M * N);
        _scratch = Alloc(Gemm.MultiplyScratch(width));
        _stack = Alloc(Gemm.StackDepth(K, 16) * Kernels.TileRows * width);
        fixed (float* b = _b)
        {
            switch (Product)
            {
                case "forward":
                    _packed = Alloc(Gemm.PanelCount(N, width) * K * width);
                    for (var jr = 0; jr < Gemm.PanelCount(N, width); jr++)
                        Kernels.PackTransposed(b, K, K, jr * width, Math.Min(width, N - jr * width), width, _packed + jr * K * width);
                    break;
                case "backward":
                    _packed = Alloc(Gemm.PanelCount(N, width) * K * width);
                    Kernels.PackRowPanels(new RowSource(b, N), K, N, 0, Gemm.PanelCount(N, width), width, _packed);
                    break;
                default:
                    // Δᵀ tiles from A (k × m); B's panels are packed by the product itself, as in a step.
                    _packed = Alloc(Gemm.RowTileCount(M) * K * Kernels.TileRows + Gemm.PanelCount(N, width) * K * width);
                    Kernels.PackTransposedTiles(_pa, M, K, M, 0, Gemm.RowTileCount(M), _packed);
                    _pb = Copy(_b);
                    break;
            }
        }
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

    [Benchmark]
    public void InStep()
    {
        var width = Kernels.DefaultWidth;
        switch (Product)
        {
            case "forward":
            case "backward":
                Gemm.MultiplyTiles(new RowSource(_pa, K), M, N, K, _packed, width, _pc, N, null, TileEpilogue.None, default, null, 0,
                    0, Gemm.PanelCount(N, width), 0, Gemm.RowTileCount(M), _scratch);
                break;
            default:
                Gemm.GradientPanels(_packed, M, new RowSource(_pb, N), N, K, 16, width, _pc, N, 0, Gemm.PanelCount(N, width),
                    _packed + Gemm.RowTileCount(M) * K * Kernels.TileRows, _scratch, _stack);
                break;
        }
    }

    /// <summary>OpenBLAS sgemm of the same product and transpositions (o·Wᵀ, Δ·W, Δᵀ·o), when installed.</summary>
    [Benchmark]
    public void OpenBlasSgemm()
    {
        if (!OpenBlas.IsAvailable) return;
        switch (Product)
        {
            case "forward": OpenBlas.Multiply(_a, _b, _c, M, N, K, transposeA: false, transposeB: true); break;
            case "backward": OpenBlas.Multiply(_a, _b, _c, M, N, K, transposeA: false, transposeB: false); break;
            default: OpenBlas.Multiply(_a, _b, _c, M, N, K, transposeA: true, transposeB: false); break;
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var p in new[] { _pa, _pb, _pc, _packed, _scratch, _stack }) NativeMemory.AlignedFree(p);
        _pa = _pb = _pc = _packed = _scratch = _stack = null;
        GC.SuppressFinalize(this);
    }

    private static float* Alloc(int count)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)count * sizeof(float), 64);
        new Span<float>(p, count).Clear();
        return p;
    }

    private static float* Copy(float[] values)
    {
        var p = Alloc(values.Length);
        values.CopyTo(new Span<float>(p, values.Length));
        return p;
    }
}
