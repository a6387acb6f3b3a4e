using Backprop.Engine;

namespace Backprop.Benchmarks.Tests;

/// <summary>
/// The OpenBLAS binding the benchmarks measure against: the same products as the reference when the
/// library is installed, a clear refusal when it is not.
/// </summary>
public class OpenBlasTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Multiply_EveryTransposition_MatchesTheReference(bool transposeA, bool transposeB)
    {
        const int m = 7, n = 13, k = 5;
        var random = new Random(3);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var c = new float[m * n];
        if (!OpenBlas.IsAvailable)
        {
            var refused = Assert.Throws<PlatformNotSupportedException>(() => OpenBlas.Multiply(a, b, c, m, n, k, transposeA, transposeB));
            Assert.Contains("libopenblas", refused.Message);
            return;
        }
        OpenBlas.SetThreads(1);
        OpenBlas.Multiply(a, b, c, m, n, k, transposeA, transposeB);
        // The reference with op(A), op(B) written out: A stored k × m is Aᵀ, B stored n × k is Bᵀ.
        var opA = transposeA ? Transpose(a, k, m) : a;
        var opB = transposeB ? Transpose(b, n, k) : b;
        var expected = new float[m * n];
        ReferenceGemm.Multiply(opA, opB, expected, m, n, k);
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], c[i], 1e-5f);
    }

    private static float[] Transpose(float[] x, int rows, int columns)
    {
        var t = new float[rows * columns];
        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < columns; j++) t[j * rows + r] = x[r * columns + j];
        }
        return t;
    }
}
