using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Backprop.Training;

namespace Backprop.Engine;

/// <summary>
/// The register-blocked inner loops of <see cref="Gemm"/> and the packing that feeds them.
/// </summary>
/// <remarks>
/// A micro-tile of C is <see cref="TileRows"/> rows × W columns, W = 16 (two Vector256, AVX2 + FMA)
/// or 8 (two Vector128, the portable kernel). Its 12 accumulators stay in registers while k runs:
/// each step loads two vectors of the packed B panel (k × W, row p at <c>b + p·W</c>), broadcasts one
/// element of each of the six A rows and issues 12 fused multiply-adds.
///
/// Determinism: every element of C is one FMA chain c ← fma(a_ip, b_pj, c) over p in increasing
/// order, started from the bias or zero (loaded into the registers on a full tile's first pass) or
/// from the value in C (a later pass over k, an edge tile's scratch, a chunk's partial sum). A row's
/// result therefore does not depend on where the row sits in the matrix, how many rows there are,
/// which tile or thread computed it, or whether it went through the edge path (edge tiles run the
/// same kernel on zero-padded panels and a scratch tile).
/// </remarks>
internal static unsafe class Kernels
{
    /// <summary>Rows of a micro-tile (rows of A broadcast per step).</summary>
    public const int TileRows = 6;

    /// <summary>Columns of a micro-tile with the AVX2 + FMA kernel.</summary>
    public const int WideWidth = 16;

    /// <summary>Columns of a micro-tile with the portable Vector128 kernel.</summary>
    public const int PortableWidth = 8;

    /// <summary>Whether this processor runs the 6 × 16 AVX2 + FMA kernel.</summary>
    public static bool WideSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The tile width used by default: 16 with AVX2 + FMA, otherwise 8.</summary>
    public static readonly int DefaultWidth = WideSupported ? WideWidth : PortableWidth;

    /// <summary>
    /// C (6 × W) ← S + A (6 × k) · B (k × W), where S is C itself when <paramref name="start"/> is null,
    /// else the W floats at <paramref name="start"/> on every row (a bias, or zeros). A's row r is read at
    /// <c>a_r[p · aStep]</c>; B is a packed panel; C rows are <paramref name="ldc"/> apart.
    /// </summary>
    public static void Tile(int width, int k, float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, nint aStep, float* b, float* c, nint ldc,
        float* start = null)
    {
        if (width == WideWidth) Tile16(k, a0, a1, a2, a3, a4, a5, aStep, b, c, ldc, start);
        else Tile8(k, a0, a1, a2, a3, a4, a5, aStep, b, c, ldc, start);
    }

    /// <summary>
    /// C (6 × W) ← Σ over chunks of <paramref name="chunkSize"/> steps of A·B, each chunk summed from
    /// zero, the chunk sums added along the binary chunk tree in a stack of partial tiles (L1-resident)
    /// so the tree costs no pass over C. A is packed (p-th step at <c>a + 6p</c>).
    /// </summary>
    public static void TreeTile(int width, int k, int chunkSize, float* a, float* b, float* c, nint ldc, float* stack)
    {
        if (width == WideWidth) TreeTile16(k, chunkSize, a, b, c, ldc, stack);
        else TreeTile8(k, chunkSize, a, b, c, ldc, stack);
    }

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

    /// <summary>
    /// Packs column panels [firstPanel, endPanel) of B (k × n) into <paramref name="packed"/>, panel
    /// jr at <c>packed + (jr − firstPanel)·k·W</c> (k × W, zero-padded past column n). B's row p is
    /// <paramref name="rows"/>.Row(p); rows are read once each, front to back.
    /// </summary>
    public static void PackRowPanels(in RowSource rows, int k, int n, int firstPanel, int endPanel, int width, float* packed)
    {
        var panelFloats = (nint)k * width;
        for (var p = 0; p < k; p++)
        {
            var row = rows.Row(p);
            var dst = packed + p * width;
            for (var jr = firstPanel; jr < endPanel; jr++, dst += panelFloats)
            {
                var j0 = jr * width;
                var count = Math.Min(width, n - j0);
                if (count == WideWidth && width == WideWidth)
                {
                    Vector256.Store(Vector256.Load(row + j0), dst);
                    Vector256.Store(Vector256.Load(row + j0 + 8), dst + 8);
                }
                else if (count == PortableWidth && width == PortableWidth)
                {
                    Vector128.Store(Vector128.Load(row + j0), dst);
                    Vector128.Store(Vector128.Load(row + j0 + 4), dst + 4);
                }
                else
                {
                    for (var j = 0; j < width; j++) dst[j] = j < count ? row[j0 + j] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// Packs columns [j0, j0 + count) of B = Mᵀ (k × n) into a panel (k × W, zero-padded), where M
    /// (n × k) is row-major with rows <paramref name="ldm"/> apart: the forward pass's Wᵀ.
    /// </summary>
    public static void PackTransposed(float* m, nint ldm, int k, int j0, int count, int width, float* panel)
    {
        var p = 0;
        if (width == WideWidth && count == WideWidth && Avx2.IsSupported)
        {
            // 8 × 8 blocks transposed in registers.
            for (; p + 8 <= k; p += 8)
            {
                Transpose8x8(m + j0 * ldm + p, ldm, panel + p * WideWidth, WideWidth);
                Transpose8x8(m + (j0 + 8) * ldm + p, ldm, panel + p * WideWidth + 8, WideWidth);
            }
        }
        for (; p < k; p++)
        {
            var dst = panel + p * width;
            for (var j = 0; j < width; j++) dst[j] = j < count ? m[(j0 + j) * ldm + p] : 0f;
        }
    }

    /// <summary>dst (8 × 8, rows <paramref name="ldd"/> apart) ← srcᵀ (src rows <paramref name="lds"/> apart).</summary>
    private static void Transpose8x8(float* src, nint lds, float* dst, nint ldd)
    {
        var r0 = Vector256.Load(src); var r1 = Vector256.Load(src + lds);
        var r2 = Vector256.Load(src + 2 * lds); var r3 = Vector256.Load(src + 3 * lds);
        var r4 = Vector256.Load(src + 4 * lds); var r5 = Vector256.Load(src + 5 * lds);
        var r6 = Vector256.Load(src + 6 * lds); var r7 = Vector256.Load(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x20), dst + ldd);
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x20), dst + 2 * ldd);
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x20), dst + 3 * ldd);
        Vector256.Store(Avx.Permute2x128(s0, s4, 0x31), dst + 4 * ldd);
        Vector256.Store(Avx.Permute2x128(s1, s5, 0x31), dst + 5 * ldd);
        Vector256.Store(Avx.Permute2x128(s2, s6, 0x31), dst + 6 * ldd);
        Vector256.Store(Avx.Permute2x128(s3, s7, 0x31), dst + 7 * ldd);
    }

    /// <summary>
    /// Packs rows [i0, i0 + 6) of A (m rows; rows past m repeat row m − 1), columns [p0, p0 + depth), into a
    /// tile (depth × 6): step p of the tile holds column p0 + p of the six rows.
    /// </summary>
    public static void PackRowTile(in RowSource a, int m, int i0, int p0, int depth, float* tile)
    {
        var last = m - 1;
        float* r0 = a.Row(i0) + p0, r1 = a.Row(Math.Min(i0 + 1, last)) + p0, r2 = a.Row(Math.Min(i0 + 2, last)) + p0;
        float* r3 = a.Row(Math.Min(i0 + 3, last)) + p0, r4 = a.Row(Math.Min(i0 + 4, last)) + p0, r5 = a.Row(Math.Min(i0 + 5, last)) + p0;
        for (var p = 0; p < depth; p++)
        {
            tile[0] = r0[p];
            tile[1] = r1[p];
            tile[2] = r2[p];
            tile[3] = r3[p];
            tile[4] = r4[p];
            tile[5] = r5[p];
            tile += TileRows;
        }
    }

    /// <summary>
    /// Packs row tiles [firstTile, endTile) of Aᵀ, where A (k × m) is row-major with rows
    /// <paramref name="lda"/> apart, into consecutive tiles (k × 6 each, zero-padded past column m):
    /// step p of tile ir is A's row p, columns 6·ir … 6·ir + 5. The weight gradient's Δᵀ.
    /// </summary>
    /// <remarks>A's rows are read once each, front to back; a full tile's six floats go as one 16- and one 8-byte copy.</remarks>
    public static void PackTransposedTiles(float* a, nint lda, int k, int m, int firstTile, int endTile, float* tiles)
    {
        var fullEnd = Math.Min(endTile, m / TileRows);
        var tileFloats = (nint)k * TileRows;
        for (var p = 0; p < k; p++)
        {
            var row = a + p * lda;
            var dst = tiles + p * TileRows;
            var ir = firstTile;
            for (; ir < fullEnd; ir++, dst += tileFloats)
            {
                var src = row + ir * TileRows;
                Vector128.Store(Vector128.Load(src), dst);
                *(long*)(dst + 4) = *(long*)(src + 4);
            }
            for (; ir < endTile; ir++, dst += tileFloats)
            {
                var i0 = ir * TileRows;
                for (var i = 0; i < TileRows; i++) dst[i] = i0 + i < m ? row[i0 + i] : 0f;
            }
        }
    }
}

/// <summary>
/// The rows of a matrix operand: row r starts at <c>Base + Index(r) · RowStride</c>, where Index is the
/// identity or, for rows gathered from a data set, <c>RowIndex[r]</c>.
/// </summary>
internal readonly unsafe struct RowSource(float* @base, nint rowStride, int* rowIndex = null)
{
    public float* Base { get; } = @base;
    public nint RowStride { get; } = rowStride;
    public int* RowIndex { get; } = rowIndex;

    /// <summary>The first element of row r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Row(int r) => Base + (RowIndex == null ? r : RowIndex[r]) * RowStride;

    /// <summary>Rows [first, …) of this operand.</summary>
    public RowSource From(int first) => RowIndex == null ? new(Base + first * RowStride, RowStride) : new(Base, RowStride, RowIndex + first);
}
