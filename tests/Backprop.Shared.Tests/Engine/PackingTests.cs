using Backprop.Engine;

namespace Backprop.Shared.Tests.Engine;

/// <summary>The packing routines (vectorized where they can be) against the plain definition, exactly.</summary>
public unsafe class PackingTests
{
    [Theory]
    [InlineData(6, 1)]
    [InlineData(6, 8)]
    [InlineData(6, 9)]
    [InlineData(13, 17)]
    [InlineData(3, 256)]
    [InlineData(7, 300)]
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
    [InlineData(6, 1)]
    [InlineData(8, 2)]
    [InlineData(13, 17)]
    [InlineData(16, 256)]
    [InlineData(10, 33)]
    [InlineData(1024, 9)]
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

    private static float[] Values(int count)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = i + 0.5f;
        return values;
    }
}
