using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
///
/// This file has the dispatch and the packing; the kernels are in Kernels.Wide.cs (AVX2 + FMA) and
/// Kernels.Portable.cs. Deliberate copies: the six-row step is written out again in every kernel (twice
/// in Tile16's loop, unrolled by two steps), and the 16-wide and 8-wide tiles are the same loop twice.
/// The twelve accumulators must be named locals to stay in registers through the hottest loop of the
/// engine, and the widths differ in vector type and FMA instruction; a helper taking the accumulators by
/// reference, or a struct of them, would leave that to the JIT.
/// </remarks>
internal static unsafe partial class Kernels
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
