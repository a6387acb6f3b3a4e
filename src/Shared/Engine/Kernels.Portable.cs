using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Backprop.Training;

namespace Backprop.Engine;

// The portable kernels: 6 × 8 micro-tiles, two Vector128 per row, on any processor.
internal static unsafe partial class Kernels
{
    /// <summary>
    /// The forward and backward tile: C (6 × 8) ← S + A · B as <see cref="Tile"/> says. A copy of
    /// <see cref="Tile16"/> at the other width (see the remarks on <see cref="Kernels"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8(int k, float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, nint aStep, float* b, float* c, nint ldc, float* start)
    {
        Vector128<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (start == null)
        {
            c00 = Vector128.Load(c); c01 = Vector128.Load(c + 4);
            c10 = Vector128.Load(c + ldc); c11 = Vector128.Load(c + ldc + 4);
            c20 = Vector128.Load(c + 2 * ldc); c21 = Vector128.Load(c + 2 * ldc + 4);
            c30 = Vector128.Load(c + 3 * ldc); c31 = Vector128.Load(c + 3 * ldc + 4);
            c40 = Vector128.Load(c + 4 * ldc); c41 = Vector128.Load(c + 4 * ldc + 4);
            c50 = Vector128.Load(c + 5 * ldc); c51 = Vector128.Load(c + 5 * ldc + 4);
        }
        else
        {
            c00 = c10 = c20 = c30 = c40 = c50 = Vector128.Load(start);
            c01 = c11 = c21 = c31 = c41 = c51 = Vector128.Load(start + 4);
        }
        nint q = 0;
        for (var p = 0; p < k; p++)
        {
            var b0 = Vector128.Load(b);
            var b1 = Vector128.Load(b + 4);
            var x = Vector128.Create(a0[q]); c00 = Vector128.FusedMultiplyAdd(x, b0, c00); c01 = Vector128.FusedMultiplyAdd(x, b1, c01);
            x = Vector128.Create(a1[q]); c10 = Vector128.FusedMultiplyAdd(x, b0, c10); c11 = Vector128.FusedMultiplyAdd(x, b1, c11);
            x = Vector128.Create(a2[q]); c20 = Vector128.FusedMultiplyAdd(x, b0, c20); c21 = Vector128.FusedMultiplyAdd(x, b1, c21);
            x = Vector128.Create(a3[q]); c30 = Vector128.FusedMultiplyAdd(x, b0, c30); c31 = Vector128.FusedMultiplyAdd(x, b1, c31);
            x = Vector128.Create(a4[q]); c40 = Vector128.FusedMultiplyAdd(x, b0, c40); c41 = Vector128.FusedMultiplyAdd(x, b1, c41);
            x = Vector128.Create(a5[q]); c50 = Vector128.FusedMultiplyAdd(x, b0, c50); c51 = Vector128.FusedMultiplyAdd(x, b1, c51);
            q += aStep;
            b += PortableWidth;
        }
        Vector128.Store(c00, c); Vector128.Store(c01, c + 4);
        Vector128.Store(c10, c + ldc); Vector128.Store(c11, c + ldc + 4);
        Vector128.Store(c20, c + 2 * ldc); Vector128.Store(c21, c + 2 * ldc + 4);
        Vector128.Store(c30, c + 3 * ldc); Vector128.Store(c31, c + 3 * ldc + 4);
        Vector128.Store(c40, c + 4 * ldc); Vector128.Store(c41, c + 4 * ldc + 4);
        Vector128.Store(c50, c + 5 * ldc); Vector128.Store(c51, c + 5 * ldc + 4);
    }

    /// <summary>
    /// The portable weight-gradient tile: each chunk summed from zero into the chunk-tree slot it waits in
    /// (a 6 × 8 tile on the stack), the slots added along the tree by <see cref="ChunkTreeCounter"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TreeTile8(int k, int chunkSize, float* a, float* b, float* c, nint ldc, float* stack)
    {
        var slots = new TileSlots(stack, TileRows * PortableWidth);
        var tree = new ChunkTreeCounter();
        for (var start = 0; start < k; start += chunkSize)
        {
            var end = Math.Min(start + chunkSize, k);
            var top = slots.Pointer(tree.Depth);
            for (var i = 0; i < TileRows * PortableWidth; i += 4) Vector128.Store(Vector128<float>.Zero, top + i);
            for (var p = start; p < end; p++)
            {
                var b0 = Vector128.Load(b);
                var b1 = Vector128.Load(b + 4);
                for (var r = 0; r < TileRows; r++)
                {
                    var x = Vector128.Create(a[r]);
                    var t = top + r * PortableWidth;
                    Vector128.Store(Vector128.FusedMultiplyAdd(x, b0, Vector128.Load(t)), t);
                    Vector128.Store(Vector128.FusedMultiplyAdd(x, b1, Vector128.Load(t + 4)), t + 4);
                }
                a += TileRows;
                b += PortableWidth;
            }
            tree.Push(ref slots);
        }
        tree.Fold(ref slots);
        for (var r = 0; r < TileRows; r++)
        {
            Vector128.Store(Vector128.Load(stack + r * PortableWidth), c + r * ldc);
            Vector128.Store(Vector128.Load(stack + r * PortableWidth + 4), c + r * ldc + 4);
        }
    }
}
