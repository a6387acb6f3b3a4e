using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Backprop.Training;

namespace Backprop.Engine;

// The AVX2 + FMA kernels: 6 × 16 micro-tiles, two Vector256 per row.
internal static unsafe partial class Kernels
{
    /// <summary>
    /// The forward and backward tile, unrolled by two steps: C (6 × 16) ← S + A · B as <see cref="Tile"/>
    /// says. A copy of <see cref="Tile8"/> at the other width (see the remarks on <see cref="Kernels"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile16(int k, float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, nint aStep, float* b, float* c, nint ldc, float* start)
    {
        // c_r0, c_r1: row r of the tile, columns 0–7 and 8–15.
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (start == null)
        {
            c00 = Vector256.Load(c); c01 = Vector256.Load(c + 8);
            c10 = Vector256.Load(c + ldc); c11 = Vector256.Load(c + ldc + 8);
            c20 = Vector256.Load(c + 2 * ldc); c21 = Vector256.Load(c + 2 * ldc + 8);
            c30 = Vector256.Load(c + 3 * ldc); c31 = Vector256.Load(c + 3 * ldc + 8);
            c40 = Vector256.Load(c + 4 * ldc); c41 = Vector256.Load(c + 4 * ldc + 8);
            c50 = Vector256.Load(c + 5 * ldc); c51 = Vector256.Load(c + 5 * ldc + 8);
        }
        else
        {
            c00 = c10 = c20 = c30 = c40 = c50 = Vector256.Load(start);
            c01 = c11 = c21 = c31 = c41 = c51 = Vector256.Load(start + 8);
        }
        nint q = 0;
        var p = 0;
        for (; p + 2 <= k; p += 2)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a0[q]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[q]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[q]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[q]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[q]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[q]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
            var q1 = q + aStep;
            b0 = Vector256.Load(b + 16);
            b1 = Vector256.Load(b + 24);
            x = Vector256.Create(a0[q1]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[q1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[q1]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[q1]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[q1]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[q1]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
            q = q1 + aStep;
            b += 32;
        }
        if (p < k)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a0[q]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[q]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[q]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[q]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[q]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[q]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
        }
        Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
    }

    /// <summary>
    /// The AVX2 weight-gradient tile. The chunks go two at a time: for each half of the tile (rows 0–2,
    /// then 3–5) a pair of chunks is summed interleaved, step by step, in 12 accumulators (3 rows × 16
    /// columns × 2 chunks), and the pair's parent in the chunk tree is added in registers. So only every
    /// second node leaves the registers: half the stores of summing one 6 × 16 chunk at a time (on the
    /// AVX2 machine measured, twelve stores after every 16 steps cost about a fifth of the kernel's speed).
    /// The stack holds, per half, one 3 × 16 entry per level of the tree (a binary counter has at most one
    /// entry per level).
    ///
    /// The one chunk-tree sum not taken by <see cref="ChunkTreeCounter"/>, on purpose: the counter adds
    /// nodes that sit in memory slots, and the whole gain here is that a pair's parent, and the running sum
    /// of the final spine, never leave the registers. So this kernel, <see cref="TreePairs16"/> and
    /// <see cref="TreeSpine16"/> do the counter's carries and fold by hand (the trailing ones of the pair
    /// index, the set bits of the chunk count), and the tests hold them bit for bit against the counter
    /// (TreeTileTests).
    /// </summary>
    private static void TreeTile16(int k, int chunkSize, float* a, float* b, float* c, nint ldc, float* stack)
    {
        const int Slot = 3 * WideWidth; // floats per stack entry
        var chunks = (k + chunkSize - 1) / chunkSize;
        var levels = BitOperations.Log2((uint)chunks) + 1;
        float* low = stack, high = stack + levels * Slot;
        TreePairs16(k, chunkSize, chunks / 2, a, b, low);
        TreePairs16(k, chunkSize, chunks / 2, a + 3, b, high);
        if ((chunks & 1) != 0)
        {
            // An odd chunk count leaves the last chunk alone, a level-0 entry: all six rows at once.
            var first = (chunks - 1) * chunkSize;
            LoneChunk16(k - first, a + (nint)first * TileRows, b + (nint)first * WideWidth, low, high);
        }
        TreeSpine16(chunks, low, c, ldc);
        TreeSpine16(chunks, high, c + 3 * ldc, ldc);
    }

    /// <summary>The <paramref name="pairs"/> pairs of chunks of three rows (A's elements p·6 + 0…2 from <paramref name="a"/>) onto the stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TreePairs16(int k, int chunkSize, int pairs, float* a, float* b, float* stack)
    {
        const int Slot = 3 * WideWidth;
        Vector256<float> c00, c01, c10, c11, c20, c21, d00, d01, d10, d11, d20, d21;
        // From chunk i to chunk i + 1: A and B one chunk further on.
        nint aNext = (nint)chunkSize * TileRows, bNext = (nint)chunkSize * WideWidth;
        for (var pair = 0; pair < pairs; pair++)
        {
            // Chunk 2·pair (always full) in c, chunk 2·pair + 1 (the last may be short) in d, step by step.
            c00 = c01 = c10 = c11 = c20 = c21 = Vector256<float>.Zero;
            d00 = d01 = d10 = d11 = d20 = d21 = Vector256<float>.Zero;
            var second = Math.Min(chunkSize, k - (2 * pair + 1) * chunkSize);
            var p = 0;
            for (; p < second; p++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
                x = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
                x = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
                b0 = Vector256.Load(b + bNext);
                b1 = Vector256.Load(b + bNext + 8);
                x = Vector256.Create(a[aNext]); d00 = Fma.MultiplyAdd(x, b0, d00); d01 = Fma.MultiplyAdd(x, b1, d01);
                x = Vector256.Create(a[aNext + 1]); d10 = Fma.MultiplyAdd(x, b0, d10); d11 = Fma.MultiplyAdd(x, b1, d11);
                x = Vector256.Create(a[aNext + 2]); d20 = Fma.MultiplyAdd(x, b0, d20); d21 = Fma.MultiplyAdd(x, b1, d21);
                a += TileRows;
                b += WideWidth;
            }
            for (; p < chunkSize; p++)
            {
                // The first chunk's steps past the end of a short second chunk.
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
                x = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
                x = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
                a += TileRows;
                b += WideWidth;
            }
            a += aNext;
            b += bNext;
            // The pair's parent (level 1) = left + right; then the binary counter: pair q closes as many
            // complete left siblings as q has trailing ones.
            c00 += d00; c01 += d01; c10 += d10; c11 += d11; c20 += d20; c21 += d21;
            var s = stack + Slot;
            for (var merges = BitOperations.TrailingZeroCount(~pair); merges > 0; merges--, s += Slot)
            {
                c00 = Vector256.Load(s) + c00; c01 = Vector256.Load(s + 8) + c01;
                c10 = Vector256.Load(s + 16) + c10; c11 = Vector256.Load(s + 24) + c11;
                c20 = Vector256.Load(s + 32) + c20; c21 = Vector256.Load(s + 40) + c21;
            }
            Vector256.Store(c00, s); Vector256.Store(c01, s + 8);
            Vector256.Store(c10, s + 16); Vector256.Store(c11, s + 24);
            Vector256.Store(c20, s + 32); Vector256.Store(c21, s + 40);
        }
    }

    /// <summary>One chunk of <paramref name="steps"/> steps, all six rows, summed from zero: rows 0–2 to <paramref name="low"/>, 3–5 to <paramref name="high"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LoneChunk16(int steps, float* a, float* b, float* low, float* high)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
        for (var p = 0; p < steps; p++)
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
        Vector256.Store(c00, low); Vector256.Store(c01, low + 8);
        Vector256.Store(c10, low + 16); Vector256.Store(c11, low + 24);
        Vector256.Store(c20, low + 32); Vector256.Store(c21, low + 40);
        Vector256.Store(c30, high); Vector256.Store(c31, high + 8);
        Vector256.Store(c40, high + 16); Vector256.Store(c41, high + 24);
        Vector256.Store(c50, high + 32); Vector256.Store(c51, high + 40);
    }

    /// <summary>
    /// Three rows of C ← the sum of the stack's entries after <paramref name="chunks"/> chunks: the set bits
    /// of the chunk count, the left spines of the tree, added right to left (from the lowest level up).
    /// </summary>
    private static void TreeSpine16(int chunks, float* stack, float* c, nint ldc)
    {
        const int Slot = 3 * WideWidth;
        var rest = (uint)chunks;
        var r = stack + BitOperations.TrailingZeroCount(rest) * Slot;
        Vector256<float> c00 = Vector256.Load(r), c01 = Vector256.Load(r + 8);
        Vector256<float> c10 = Vector256.Load(r + 16), c11 = Vector256.Load(r + 24);
        Vector256<float> c20 = Vector256.Load(r + 32), c21 = Vector256.Load(r + 40);
        for (rest &= rest - 1; rest != 0; rest &= rest - 1)
        {
            var s = stack + BitOperations.TrailingZeroCount(rest) * Slot;
            c00 = Vector256.Load(s) + c00; c01 = Vector256.Load(s + 8) + c01;
            c10 = Vector256.Load(s + 16) + c10; c11 = Vector256.Load(s + 24) + c11;
            c20 = Vector256.Load(s + 32) + c20; c21 = Vector256.Load(s + 40) + c21;
        }
        Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
    }
}
