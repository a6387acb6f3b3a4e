using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Backprop.Engine;

namespace Backprop.Benchmarks;

/// <summary>
/// The micro-kernels alone, every operand in L1: one 6 × W tile over k = 256 steps, repeated. "Tile" is
/// the forward/backward kernel; "TreeTile" the weight-gradient kernel summing chunks of
/// <see cref="Chunk"/> steps along the chunk tree (256: one chunk, no tree), two chunks at a time;
/// "ChunkByChunk" the same sums one chunk at a time (AVX2 only). What the chunk tree costs.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 15)]
public unsafe class MicroKernelBenchmarks : IFlopCount, IDisposable
{
    private const int K = 256, Repeats = 1000;
    private readonly int _width = Kernels.DefaultWidth;
    private float* _a, _b, _c, _stack;
    private int* _levels;

    [Params(16, 32, 64, 256)]
    public int Chunk { get; set; } = 16;

    public double Flops => 2.0 * Kernels.TileRows * _width * K * Repeats;

    [GlobalSetup]
    public void Setup()
    {
        _a = Alloc(Kernels.TileRows * K);
        _b = Alloc(_width * K);
        _c = Alloc(Kernels.TileRows * _width);
        _stack = Alloc(16 * Kernels.TileRows * _width);
        _levels = (int*)NativeMemory.Alloc(16 * sizeof(int));
        var random = new Random(1);
        for (var i = 0; i < Kernels.TileRows * K; i++) _a[i] = (float)random.NextDouble() - 0.5f;
        for (var i = 0; i < _width * K; i++) _b[i] = (float)random.NextDouble() - 0.5f;
        if (_width == Kernels.WideWidth)
        {
            // The baseline must compute the very same sums.
            var engine = new float[Kernels.TileRows * _width];
            TreeTile();
            new Span<float>(_c, engine.Length).CopyTo(engine);
            ChunkByChunk();
            if (!MemoryMarshal.Cast<float, int>(new Span<float>(_c, engine.Length)).SequenceEqual(MemoryMarshal.Cast<float, int>(engine.AsSpan()))) throw new InvalidOperationException("the chunk-by-chunk baseline gives other bits");
        }
    }

    [Benchmark(Baseline = true)]
    public void Tile()
    {
        for (var r = 0; r < Repeats; r++)
            Kernels.Tile(_width, K, _a, _a + 1, _a + 2, _a + 3, _a + 4, _a + 5, Kernels.TileRows, _b, _c, _width);
    }

    [Benchmark]
    public void TreeTile()
    {
        for (var r = 0; r < Repeats; r++) Kernels.TreeTile(_width, K, Chunk, _a, _b, _c, _width, _stack);
    }

    [Benchmark]
    public void ChunkByChunk()
    {
        if (_width != Kernels.WideWidth) throw new PlatformNotSupportedException("the chunk-by-chunk baseline is the AVX2 kernel");
        for (var r = 0; r < Repeats; r++) ChunkByChunkKernel.TreeTile16(K, Chunk, _a, _b, _c, _width, _stack, _levels);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
        NativeMemory.AlignedFree(_stack);
        NativeMemory.Free(_levels);
        _a = _b = _c = _stack = null;
        GC.SuppressFinalize(this);
    }

    private static float* Alloc(int count)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        new Span<float>(p, count).Clear();
        return p;
    }
}
