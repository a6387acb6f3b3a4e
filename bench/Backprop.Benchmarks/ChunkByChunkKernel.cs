using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Benchmarks;

/// <summary>
/// The weight-gradient kernel as it was before it took chunks in pairs: one 6 × 16 chunk at a time, its
/// sum stored and merged along the chunk tree after every chunk. Kept here (not in the engine) as the
/// baseline of <see cref="MicroKernelBenchmarks"/>, which checks that it gives the engine kernel's bits.
/// </summary>
internal static unsafe class ChunkByChunkKernel
{
    private const int TileRows = 6, WideWidth = 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TreeTile16(int k, int chunkSize, float* a, float* b, float* c, nint ldc, float* stack, int* levels)
    {
        const int Slot = TileRows * WideWidth; // floats per stack entry
        var depth = 0;
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        for (var start = 0; start < k; start += chunkSize)
        {
            // This chunk's sum, from zero.
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
            var end = Math.Min(start + chunkSize, k);
            for (var p = start; p < end; p++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
                x = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
                x = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
                x = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
                x = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
                x = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
                a += TileRows;
                b += WideWidth;
            }
            // Binary-counter merge: while the node below is of the same level, left + right is the parent.
            var level = 0;
            while (depth > 0 && levels[depth - 1] == level)
            {
                depth--;
                var s = stack + depth * Slot;
                c00 = Vector256.Load(s) + c00; c01 = Vector256.Load(s + 8) + c01;
                c10 = Vector256.Load(s + 16) + c10; c11 = Vector256.Load(s + 24) + c11;
                c20 = Vector256.Load(s + 32) + c20; c21 = Vector256.Load(s + 40) + c21;
                c30 = Vector256.Load(s + 48) + c30; c31 = Vector256.Load(s + 56) + c31;
                c40 = Vector256.Load(s + 64) + c40; c41 = Vector256.Load(s + 72) + c41;
                c50 = Vector256.Load(s + 80) + c50; c51 = Vector256.Load(s + 88) + c51;
                level++;
            }
            var top = stack + depth * Slot;
            Vector256.Store(c00, top); Vector256.Store(c01, top + 8);
            Vector256.Store(c10, top + 16); Vector256.Store(c11, top + 24);
            Vector256.Store(c20, top + 32); Vector256.Store(c21, top + 40);
            Vector256.Store(c30, top + 48); Vector256.Store(c31, top + 56);
            Vector256.Store(c40, top + 64); Vector256.Store(c41, top + 72);
            Vector256.Store(c50, top + 80); Vector256.Store(c51, top + 88);
            levels[depth++] = level;
        }
        // What remains are the left spines of the tree: add them right to left.
        var r = stack + (depth - 1) * Slot;
        c00 = Vector256.Load(r); c01 = Vector256.Load(r + 8);
        c10 = Vector256.Load(r + 16); c11 = Vector256.Load(r + 24);
        c20 = Vector256.Load(r + 32); c21 = Vector256.Load(r + 40);
        c30 = Vector256.Load(r + 48); c31 = Vector256.Load(r + 56);
        c40 = Vector256.Load(r + 64); c41 = Vector256.Load(r + 72);
        c50 = Vector256.Load(r + 80); c51 = Vector256.Load(r + 88);
        for (var d = depth - 2; d >= 0; d--)
        {
            var s = stack + d * Slot;
            c00 = Vector256.Load(s) + c00; c01 = Vector256.Load(s + 8) + c01;
            c10 = Vector256.Load(s + 16) + c10; c11 = Vector256.Load(s + 24) + c11;
            c20 = Vector256.Load(s + 32) + c20; c21 = Vector256.Load(s + 40) + c21;
            c30 = Vector256.Load(s + 48) + c30; c31 = Vector256.Load(s + 56) + c31;
            c40 = Vector256.Load(s + 64) + c40; c41 = Vector256.Load(s + 72) + c41;
            c50 = Vector256.Load(s + 80) + c50; c51 = Vector256.Load(s + 88) + c51;
        }
        Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
    }
}
