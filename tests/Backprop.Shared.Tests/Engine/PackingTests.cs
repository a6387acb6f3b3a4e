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
    public void PackTransposedTile_EveryStep_HoldsTheRowsSixColumns(int columns, int k)
    {
        var a = Values(k * columns);
        for (var i0 = 0; i0 < columns; i0 += Kernels.TileRows)
        {
            var count = Math.Min(Kernels.TileRows, columns - i0);
            var tile = new float[k * Kernels.TileRows + 8];
            Array.Fill(tile, float.NaN);
            fixed (float* pa = a, pt = tile)
                Kernels.PackTransposedTile(pa, columns, k, i0, count, pt);
            for (var p = 0; p < k; p++)
            {
                for (var i = 0; i < Kernels.TileRows; i++)
                    Assert.Equal(i < count ? a[p * columns + i0 + i] : 0f, tile[p * Kernels.TileRows + i]);
            }
            Assert.All(tile[(k * Kernels.TileRows)..], x => Assert.True(float.IsNaN(x), "wrote past the tile"));
        }
    }

    private static float[] Values(int count)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = i + 0.5f;
        return values;
    }
}
