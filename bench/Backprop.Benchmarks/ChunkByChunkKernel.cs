using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Benchmarks;

/// <summary>
/// The weight-gradient kernel as it was before it took chunks in pairs: one 6 × 16 chunk at a time, its
/// sum stored and merged along the chunk tree after every chunk. Kept here (not in the engine) as the
/// baseline of <see cref="MicroKernelBenchmarks"/>, which checks that it gives the engine kernel's bits.
/// </summary>
/// <remarks>
/// A deliberate copy of the engine's AVX2 step (the six-row FMA block of <c>Kernels.LoneChunk16</c>):
/// a baseline must keep its own machine code, with each chunk's sum and its merges in registers, which a
/// call into the engine's kernels or its <c>ChunkTreeCounter</c> (slots in memory) would change.
/// </remarks>
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
            // After the last chunk every entry left goes too, the left spines of the tree, right to left.
            var last = end == k;
            var level = 0;
            while (depth > 0 && (last || levels[depth - 1] == level))
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
            // The root goes to C; any other node onto the stack.
            var top = last ? c : stack + depth * Slot;
            var ld = last ? ldc : WideWidth;
            Vector256.Store(c00, top); Vector256.Store(c01, top + 8);
            Vector256.Store(c10, top + ld); Vector256.Store(c11, top + ld + 8);
            Vector256.Store(c20, top + 2 * ld); Vector256.Store(c21, top + 2 * ld + 8);
            Vector256.Store(c30, top + 3 * ld); Vector256.Store(c31, top + 3 * ld + 8);
            Vector256.Store(c40, top + 4 * ld); Vector256.Store(c41, top + 4 * ld + 8);
            Vector256.Store(c50, top + 5 * ld); Vector256.Store(c51, top + 5 * ld + 8);
            levels[depth++] = level;
        }
    }
}
