using Backprop.Engine;

namespace Backprop.Shared.Tests.Engine;

/// <summary>The packing routines (vectorized where they can be) against the plain definition, exactly.</summary>
public unsafe class PackingTests
{
    /// <summary>(m, columns): one tile, one and a half vectors, rows past a tile, fewer rows than a tile, long rows.</summary>
    public static TheoryData<int, int> RowTileShapes => new() { { 6, 1 }, { 6, 8 }, { 6, 9 }, { 13, 17 }, { 3, 256 }, { 7, 300 } };

    /// <summary>(columns, k): one tile, a tile and a part, odd sizes, many steps, many tiles.</summary>
    public static TheoryData<int, int> TransposedTileShapes => new() { { 6, 1 }, { 8, 2 }, { 13, 17 }, { 16, 256 }, { 10, 33 }, { 1024, 9 } };

    [Theory]
    [MemberData(nameof(RowTileShapes))]
    public void PackRowTile_EveryStep_HoldsTheSixRowsColumn(int m, int columns)
    {
        var a = Values(m * columns);
        foreach (var (i0, p0, depth) in new[] { (0, 0, columns), (6 * ((m - 1) / 6), 0, columns), (0, columns / 3, columns - columns / 3) })
        {
            var tile = new float[depth * Kernels.TileRows + 8];
            Array.Fill(tile, float.NaN);
            fixed (float* pa = a, pt = tile)
                Kernels.PackRowTile(new RowSource(pa, columns), m, i0, p0, depth, pt);
            for (var p = 0; p < depth; p++)
            {
                for (var r = 0; r < Kernels.TileRows; r++)
                {
                    // Rows past m repeat row m − 1.
                    var row = Math.Min(i0 + r, m - 1);
                    Assert.Equal(a[row * columns + p0 + p], tile[p * Kernels.TileRows + r]);
                }
            }
            Assert.All(tile[(depth * Kernels.TileRows)..], x => Assert.True(float.IsNaN(x), "wrote past the tile"));
        }
    }

    [Theory]
    [MemberData(nameof(TransposedTileShapes))]
    public void PackTransposedTiles_EveryTileRange_HoldsEachStepsSixColumns(int columns, int k)
    {
        var a = Values(k * columns);
        var tileCount = (columns + Kernels.TileRows - 1) / Kernels.TileRows;
        // Every range a thread of the engine may be given: the first tiles, the last ones, one in the middle, all.
        foreach (var (first, end) in new[] { (0, tileCount), (0, 1), (tileCount - 1, tileCount), (tileCount / 2, tileCount) })
        {
            var tiles = new float[(end - first) * k * Kernels.TileRows + 8];
            Array.Fill(tiles, float.NaN);
            fixed (float* pa = a, pt = tiles)
                Kernels.PackTransposedTiles(pa, columns, k, columns, first, end, pt);
            for (var ir = first; ir < end; ir++)
            {
                var tile = (ir - first) * k * Kernels.TileRows;
                for (var p = 0; p < k; p++)
                {
                    for (var i = 0; i < Kernels.TileRows; i++)
                    {
                        var column = ir * Kernels.TileRows + i;
                        Assert.Equal(column < columns ? a[p * columns + column] : 0f, tiles[tile + p * Kernels.TileRows + i]);
                    }
                }
            }
            Assert.All(tiles[((end - first) * k * Kernels.TileRows)..], x => Assert.True(float.IsNaN(x), "wrote past the tiles"));
        }
    }

    [Theory]
    [InlineData(16, 5, 16)]
    [InlineData(16, 3, 330)]     // 21 panels, the last one 10 wide: three groups, the last partial
    [InlineData(8, 7, 100)]      // the portable width
    [InlineData(16, 1, 7)]       // one panel narrower than its width
    public void PackRowPanels_EveryPanelRange_HoldsTheRowsColumnsZeroPadded(int width, int k, int n)
    {
        var rows = k + 3;
        var b = Values(rows * n);
        // Rows gathered through an index, as the engine reads the data set: row p of B is row order[p].
        var order = Enumerable.Range(0, rows).Reverse().Take(k).ToArray();
        var panels = (n + width - 1) / width;
        foreach (var (first, end) in new[] { (0, panels), (0, 1), (panels - 1, panels), (panels / 2, panels) })
        {
            var packed = new float[(end - first) * k * width + 8];
            Array.Fill(packed, float.NaN);
            fixed (float* pb = b, pp = packed)
            fixed (int* index = order)
                Kernels.PackRowPanels(new RowSource(pb, n, index), k, n, first, end, width, pp);
            for (var jr = first; jr < end; jr++)
            {
                for (var p = 0; p < k; p++)
                {
                    for (var j = 0; j < width; j++)
                    {
                        var column = jr * width + j;
                        var expected = column < n ? b[order[p] * n + column] : 0f;
                        Assert.Equal(expected, packed[((jr - first) * k + p) * width + j]);
                    }
                }
            }
            Assert.All(packed[((end - first) * k * width)..], x => Assert.True(float.IsNaN(x), "wrote past the panels"));
        }
    }

    private static float[] Values(int count)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = i + 0.5f;
        return values;
    }
}
