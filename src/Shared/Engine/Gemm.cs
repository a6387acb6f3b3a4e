using System.Buffers;
using Backprop.Networks;

namespace Backprop.Engine;

/// <summary>What a GEMM does to each finished tile of C before moving on (while the tile is in L1).</summary>
internal enum TileEpilogue
{
    /// <summary>Nothing: C is the nets.</summary>
    None,
    /// <summary>C ← f(C): the forward pass's activation.</summary>
    Activate,
    /// <summary>C ← C ⊙ f'(o): the backward pass's derivative, with o the layer's outputs.</summary>
    MultiplyByDerivative,
}

/// <summary>
/// The fast matrix products of the engine: packed B panels, a register-blocked 6 × 16 FMA micro-kernel
/// (6 × 8 portable), optional fused bias and activation, and for the weight gradient a K loop that sums
/// chunk by chunk and adds the chunk sums along the chunk tree in registers. <see cref="ReferenceGemm"/>
/// is the plain version it is held to.
/// </summary>
/// <remarks>
/// The span methods here are single-threaded conveniences (benchmarks, tests); the engine calls the
/// tile-range drivers below from every thread of its team, each on its own tiles of C. Every element
/// of C is one FMA chain over k in increasing order (see <see cref="Kernels"/>), so results do not
/// depend on the tile split, the thread count or the row's position.
/// </remarks>
public static unsafe class Gemm
{
    /// <summary>The micro-kernel this process runs: "AVX2 + FMA, 6 × 16 micro-tiles" or the portable one.</summary>
    public static string KernelDescription => Kernels.DefaultWidth == Kernels.WideWidth
        ? "AVX2 + FMA, 6 × 16 micro-tiles"
        : "portable Vector128, 6 × 8 micro-tiles";

    /// <summary>C (m × n) = A (m × k) · Bᵀ with B (n × k). The forward pass: net = o · Wᵀ.</summary>
    public static void MultiplyTransposedB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k) =>
        MultiplyTransposedB(a, b, c, m, n, k, Kernels.DefaultWidth);

    /// <summary>C (m × n) = A (m × k) · B (k × n). The backward pass: Δ_below = Δ · W.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k) =>
        Multiply(a, b, c, m, n, k, Kernels.DefaultWidth);

    /// <summary>
    /// C (m × n) = Aᵀ · B with A (k × m) and B (k × n): the weight gradient ∂C/∂W = Δᵀ · o summed over
    /// the k samples. With <paramref name="chunkSize"/> &gt; 0 the samples are summed chunk by chunk and
    /// the chunk sums added along <see cref="Training.ChunkTree"/>; 0 sums all k as one chunk.
    /// </summary>
    public static void MultiplyTransposedA(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, int chunkSize = 0) =>
        MultiplyTransposedA(a, b, c, m, n, k, chunkSize, Kernels.DefaultWidth);

    internal static void MultiplyTransposedB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, int width) =>
        MultiplyPacked(a, b, c, m, n, k, width, transposedB: true);

    internal static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, int width) =>
        MultiplyPacked(a, b, c, m, n, k, width, transposedB: false);

    /// <summary>C (m × n) = A (m × k) · B, B given as Bᵀ (n × k) or as B (k × n): packed into panels, then the tiles.</summary>
    private static void MultiplyPacked(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, int width, bool transposedB)
    {
        CheckShapes(a.Length, (long)m * k, b.Length, (long)n * k, c.Length, (long)m * n);
        if (m == 0 || n == 0) return;
        var panels = PanelCount(n, width);
        var packed = ArrayPool<float>.Shared.Rent(panels * Math.Max(k, 1) * width + MultiplyScratch(width));
        try
        {
            fixed (float* pa = a, pb = b, pc = c, pp = packed)
            {
                if (transposedB)
                {
                    for (var jr = 0; jr < panels; jr++)
                        Kernels.PackTransposed(pb, k, k, jr * width, Math.Min(width, n - jr * width), width, pp + jr * k * width);
                }
                else
                {
                    Kernels.PackRowPanels(new RowSource(pb, n), k, n, 0, panels, width, pp);
                }
                MultiplyTiles(new RowSource(pa, k), m, n, k, pp, width, pc, n, null, TileEpilogue.None, default, null, 0,
                    0, panels, 0, RowTileCount(m), pp + panels * k * width);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
        }
    }

    internal static void MultiplyTransposedA(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, int chunkSize, int width)
    {
        CheckShapes(a.Length, (long)k * m, b.Length, (long)k * n, c.Length, (long)m * n);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            c[..(m * n)].Clear();
            return;
        }
        if (chunkSize == 0) chunkSize = k;
        var depth = StackDepth(k, chunkSize);
        var tiles = RowTileCount(m);
        var size = tiles * k * Kernels.TileRows + GradientPanelFloats(k, width) + Kernels.TileRows * width + depth * Kernels.TileRows * width;
        var buffer = ArrayPool<float>.Shared.Rent(size);
        try
        {
            fixed (float* pa = a, pb = b, pc = c, pBuffer = buffer)
            {
                var packedA = pBuffer;
                Kernels.PackTransposedTiles(pa, m, k, m, 0, tiles, packedA);
                var panel = packedA + tiles * k * Kernels.TileRows;
                var scratch = panel + GradientPanelFloats(k, width);
                var stack = scratch + Kernels.TileRows * width;
                GradientPanels(packedA, m, new RowSource(pb, n), n, k, chunkSize, width, pc, n, 0, PanelCount(n, width), panel, scratch, stack);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>Panels of <paramref name="width"/> columns that cover n columns.</summary>
    internal static int PanelCount(int n, int width) => (n + width - 1) / width;

    /// <summary>Tiles of <see cref="Kernels.TileRows"/> rows that cover m rows.</summary>
    internal static int RowTileCount(int m) => (m + Kernels.TileRows - 1) / Kernels.TileRows;

    /// <summary>Micro-tiles of C (m × n).</summary>
    internal static int TileCount(int m, int n, int width) => RowTileCount(m) * PanelCount(n, width);

    /// <summary>Entries the chunk-tree stack needs for k steps in chunks of <paramref name="chunkSize"/>.</summary>
    internal static int StackDepth(int k, int chunkSize)
    {
        var chunks = (k + chunkSize - 1) / chunkSize;
        return System.Numerics.BitOperations.Log2((uint)Math.Max(chunks, 1)) + 2;
    }

    /// <summary>Steps of k per pass over C in <see cref="MultiplyTiles"/>: the rows of A it touches (r × 256) stay in L2, a B panel (256 × W) in L1.</summary>
    internal const int DepthBlock = 256;

    /// <summary>Row tiles per pass in <see cref="GradientPanels"/>: their packed Δᵀ (96 × k) stays in L2 while a group of panels goes by.</summary>
    internal const int GradientRowTiles = 16;

    /// <summary>
    /// Panels of B that <see cref="GradientPanels"/> packs and sweeps at once (4 × k × 16 floats: 64 KiB at
    /// k = 256, used while still in L2). Packing all of B first (up to 1 MiB) and sweeping it once per row
    /// block read it back from L3 every time; docs/engine.md has the measurements.
    /// </summary>
    internal const int GradientPanelGroup = 4;

    /// <summary>Row tiles per block in <see cref="MultiplyTiles"/>: the block's rows of A (72 × 256) stay in L2 while the panels go by.</summary>
    internal const int MultiplyRowTiles = 12;

    /// <summary>
    /// The tiles of C (m × n, rows <paramref name="ldc"/> apart) in column panels [firstPanel, endPanel)
    /// and row tiles [firstRowTile, endRowTile) ← bias + A (m × k) · B, then the epilogue. B is packed:
    /// panel jr holds columns jr·W … at <c>packedB + jr·k·W</c>. <paramref name="scratch"/> holds one
    /// tile (6 × W) for the edges.
    /// </summary>
    /// <remarks>
    /// Loops, outside in: passes of <see cref="DepthBlock"/> steps of k, blocks of
    /// <see cref="MultiplyRowTiles"/> row tiles, panels, row tiles. A pass loads the tile from C and goes
    /// on with the same FMA chain, so the blocking changes no bit of the result.
    /// </remarks>
    internal static void MultiplyTiles(in RowSource a, int m, int n, int k, float* packedB, int width, float* c, nint ldc, float* bias,
        TileEpilogue epilogue, Activation f, float* o, nint ldo, int firstPanel, int endPanel, int firstRowTile, int endRowTile, float* scratch)
    {
        if (firstPanel >= endPanel || firstRowTile >= endRowTile) return;
        // Packing a row block of A into one contiguous stream pays when many panels reuse it.
        var packA = endPanel - firstPanel >= PackAMinimumPanels;
        var packedA = scratch + Kernels.TileRows * width;
        for (var p0 = 0; ; p0 += DepthBlock)
        {
            var depth = Math.Min(DepthBlock, k - p0);
            bool first = p0 == 0, last = p0 + DepthBlock >= k;
            for (var block = firstRowTile; block < endRowTile; block += MultiplyRowTiles)
            {
                var blockEnd = Math.Min(block + MultiplyRowTiles, endRowTile);
                for (var ir = block; packA && ir < blockEnd; ir++)
                    Kernels.PackRowTile(a, m, ir * Kernels.TileRows, p0, depth, packedA + (nint)(ir - block) * depth * Kernels.TileRows);
                for (var jr = firstPanel; jr < endPanel; jr++)
                {
                    var panel = packedB + (nint)jr * k * width + p0 * width;
                    for (var ir = block; ir < blockEnd; ir++)
                    {
                        var i0 = ir * Kernels.TileRows;
                        var h = Math.Min(Kernels.TileRows, m - i0);
                        if (packA)
                        {
                            var tile = packedA + (nint)(ir - block) * depth * Kernels.TileRows;
                            MultiplyTile(tile, tile + 1, tile + 2, tile + 3, tile + 4, tile + 5, Kernels.TileRows, m, n, panel, width, depth, first, last,
                                c, ldc, bias, epilogue, f, o, ldo, jr, ir, scratch);
                        }
                        else
                        {
                            // Rows past m repeat row m − 1: the kernel always runs six rows.
                            MultiplyTile(a.Row(i0) + p0, a.Row(i0 + Math.Min(1, h - 1)) + p0, a.Row(i0 + Math.Min(2, h - 1)) + p0,
                                a.Row(i0 + Math.Min(3, h - 1)) + p0, a.Row(i0 + Math.Min(4, h - 1)) + p0, a.Row(i0 + Math.Min(5, h - 1)) + p0, 1,
                                m, n, panel, width, depth, first, last, c, ldc, bias, epilogue, f, o, ldo, jr, ir, scratch);
                        }
                    }
                }
            }
            if (last) break;
        }
    }

    /// <summary>A tile row of zeros: where a chain without bias starts.</summary>
    private static readonly float* Zeros = (float*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(Kernels.WideWidth, sizeof(float));

    /// <summary>Column panels from which <see cref="MultiplyTiles"/> packs A (either way the same bits).</summary>
    internal const int PackAMinimumPanels = 24;

    /// <summary>Floats of scratch <see cref="MultiplyTiles"/> needs: an edge tile and a row block of packed A.</summary>
    internal static int MultiplyScratch(int width) => Kernels.TileRows * width + MultiplyRowTiles * DepthBlock * Kernels.TileRows;

    /// <summary>One tile: C ← (first pass ? bias : C) + A rows a0…a5 (step <paramref name="aStep"/>) · panel, the epilogue after the last pass.</summary>
    private static void MultiplyTile(float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, nint aStep, int m, int n, float* panel, int width,
        int depth, bool first, bool last, float* c, nint ldc, float* bias, TileEpilogue epilogue, Activation f, float* o, nint ldo, int jr, int ir, float* scratch)
    {
        int i0 = ir * Kernels.TileRows, j0 = jr * width;
        int h = Math.Min(Kernels.TileRows, m - i0), w = Math.Min(width, n - j0);
        var full = h == Kernels.TileRows && w == width;
        var target = full ? c + i0 * ldc + j0 : scratch;
        var ld = full ? ldc : width;
        // A full tile's first pass starts every row's chain from b_j (or 0) in the kernel's registers.
        float* start = null;
        if (first && full) start = bias != null ? bias + j0 : Zeros;
        else if (!full)
        {
            // An edge tile starts the same way in the scratch tile, or picks up where C left it.
            for (var r = 0; r < Kernels.TileRows; r++)
            {
                var row = target + r * ld;
                for (var j = 0; j < width; j++)
                {
                    row[j] = j >= w || r >= h ? 0f
                        : !first ? c[(i0 + r) * ldc + j0 + j]
                        : bias != null ? bias[j0 + j] : 0f;
                }
            }
        }
        Kernels.Tile(width, depth, a0, a1, a2, a3, a4, a5, aStep, panel, target, ld, start);
        if (!full)
        {
            for (var r = 0; r < h; r++)
            {
                for (var j = 0; j < w; j++) c[(i0 + r) * ldc + j0 + j] = scratch[r * width + j];
            }
        }
        if (!last || epilogue == TileEpilogue.None) return;
        for (var r = 0; r < h; r++)
        {
            var row = c + (i0 + r) * ldc + j0;
            if (epilogue == TileEpilogue.Activate) Elementwise.Activate(f, row, w);
            else Elementwise.MultiplyByDerivative(f, row, o + (i0 + r) * ldo + j0, w);
        }
    }

    /// <summary>
    /// Column panels [firstPanel, endPanel) of C (m × n) ← Aᵀ · B summed along the chunk tree, where
    /// A (k × m) comes packed as tiles of Aᵀ (tile ir: k steps of 6 at <c>packedA + ir·k·6</c>) and B's
    /// row p is <paramref name="b"/>.Row(p). The panels go in groups of <see cref="GradientPanelGroup"/>:
    /// a group of B is packed into <paramref name="panels"/> (group × k × W floats) and swept at once by
    /// blocks of <see cref="GradientRowTiles"/> row tiles, so it is used while it is still in L2.
    /// </summary>
    internal static void GradientPanels(float* packedA, int m, in RowSource b, int n, int k, int chunkSize, int width, float* c, nint ldc,
        int firstPanel, int endPanel, float* panels, float* scratch, float* stack)
    {
        var rowTiles = RowTileCount(m);
        for (var group = firstPanel; group < endPanel; group += GradientPanelGroup)
        {
            var groupEnd = Math.Min(group + GradientPanelGroup, endPanel);
            Kernels.PackRowPanels(b, k, n, group, groupEnd, width, panels);
            for (var block = 0; block < rowTiles; block += GradientRowTiles)
            {
                for (var jr = group; jr < groupEnd; jr++)
                {
                    var j0 = jr * width;
                    var w = Math.Min(width, n - j0);
                    var panel = panels + (nint)(jr - group) * k * width;
                    for (var ir = block; ir < Math.Min(block + GradientRowTiles, rowTiles); ir++)
                    {
                        var i0 = ir * Kernels.TileRows;
                        var h = Math.Min(Kernels.TileRows, m - i0);
                        var full = h == Kernels.TileRows && w == width;
                        Kernels.TreeTile(width, k, chunkSize, packedA + (nint)ir * k * Kernels.TileRows, panel,
                            full ? c + i0 * ldc + j0 : scratch, full ? ldc : width, stack);
                        if (full) continue;
                        for (var r = 0; r < h; r++)
                        {
                            for (var j = 0; j < w; j++) c[(i0 + r) * ldc + j0 + j] = scratch[r * width + j];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Floats of packed B that <see cref="GradientPanels"/> needs for k steps (one group of panels).</summary>
    internal static int GradientPanelFloats(int k, int width) => GradientPanelGroup * k * width;

    private static void CheckShapes(int aLength, long aNeeded, int bLength, long bNeeded, int cLength, long cNeeded)
    {
        if (aLength < aNeeded || bLength < bNeeded || cLength < cNeeded)
            throw new ArgumentException($"matrix spans too short: A {aLength}/{aNeeded}, B {bLength}/{bNeeded}, C {cLength}/{cNeeded}");
    }
}
