using Backprop.Engine;
using Backprop.Training;
using MathNet.Numerics.Random;

namespace Backprop.Shared.Tests.Engine;

/// <summary>The fast GEMM against <see cref="ReferenceGemm"/>, and the bit-level properties the engine relies on.</summary>
public class GemmTests
{
    /// <summary>
    /// Both sides round each product and sum in float: each is within γ_k·Σ|a·b| of the exact value
    /// (γ_k ≈ k·2⁻²⁴), so they differ by at most 2k·2⁻²⁴·Σ_p |a_ip·b_pj| per element.
    /// </summary>
    private static double Tolerance(int k, double absoluteSum) => 2 * Math.Max(k, 1) * Math.Pow(2, -24) * absoluteSum + 1e-30;

    /// <summary>The micro-tile widths this machine can run: the portable 8 always, 16 with AVX2 + FMA.</summary>
    public static int[] Widths() => Kernels.WideSupported ? [Kernels.PortableWidth, Kernels.WideWidth] : [Kernels.PortableWidth];

    /// <summary>Odd shapes (m, n, k): 1 row, 1 column, sizes off the tile and vector widths, k past the depth block,
    /// and (7, 401, 300): enough column panels that A is packed too.</summary>
    private static readonly (int M, int N, int K)[] Shapes = [(1, 1, 1), (1, 17, 5), (7, 9, 13), (6, 16, 8), (13, 33, 300), (30, 10, 784), (5, 3, 0), (7, 401, 300)];

    /// <summary>A product as <see cref="ReferenceGemm"/> writes it: C (m × n) from A and B over k.</summary>
    private delegate void Product(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k);

    /// <summary>The three products by name: the reference, the fast one at a micro-tile width, and the seed of A (B's is the next).</summary>
    private static readonly Dictionary<string, (Product Reference, Func<int, Product> Fast, int Seed)> Products = new()
    {
        ["MultiplyTransposedB"] = (ReferenceGemm.MultiplyTransposedB, width => (a, b, c, m, n, k) => Gemm.MultiplyTransposedB(a, b, c, m, n, k, width), 1),
        ["Multiply"] = (ReferenceGemm.Multiply, width => (a, b, c, m, n, k) => Gemm.Multiply(a, b, c, m, n, k, width), 3),
        ["MultiplyTransposedA"] = (ReferenceGemm.MultiplyTransposedA, width => (a, b, c, m, n, k) => Gemm.MultiplyTransposedA(a, b, c, m, n, k, chunkSize: 4, width), 5),
    };

    /// <summary>Every product with every odd shape at every width.</summary>
    public static TheoryData<string, int, int, int, int> ProductShapes()
    {
        var data = new TheoryData<string, int, int, int, int>();
        foreach (var product in Products.Keys)
        {
            foreach (var width in Widths())
            {
                foreach (var (m, n, k) in Shapes) data.Add(product, width, m, n, k);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ProductShapes))]
    public void Product_OddShapes_MatchesReference(string product, int width, int m, int n, int k)
    {
        var (reference, fast, seed) = Products[product];
        var a = Random(m * k, seed);
        var b = Random(k * n, seed + 1);
        var expected = new float[m * n];
        var actual = Filled(m * n, float.NaN);
        reference(a, b, expected, m, n, k);
        fast(width)(a, b, actual, m, n, k);
        // What the tolerance scales with, Σ_p |a_ip·b_pj|: the reference product of |A| and |B|.
        var absoluteSums = new float[m * n];
        reference(Abs(a), Abs(b), absoluteSums, m, n, k);
        AssertClose(expected, actual, k, absoluteSums, n);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(16)]
    [InlineData(37)]
    public void MultiplyTransposedA_Chunked_EqualsChunkSumsAddedAlongTheChunkTree_Bitwise(int chunkSize)
    {
        const int m = 13, n = 21, k = 37;
        foreach (var width in Widths())
        {
            var a = Random(k * m, 7);
            var b = Random(k * n, 8);
            var fused = new float[m * n];
            Gemm.MultiplyTransposedA(a, b, fused, m, n, k, chunkSize, width);

            // Array-wise: one product per chunk (a single chunk each), then ChunkTree.Reduce with GradientSum.Add.
            var chunkCount = ChunkTree.ChunkCount(k, chunkSize);
            var nodes = new Dictionary<(int, int), GradientSum>();
            for (var chunk = 0; chunk < chunkCount; chunk++)
            {
                var rows = Math.Min(chunkSize, k - chunk * chunkSize);
                var sum = new GradientSum(m * n);
                Gemm.MultiplyTransposedA(a.AsSpan(chunk * chunkSize * m, rows * m), b.AsSpan(chunk * chunkSize * n, rows * n), sum.Values, m, n, rows, 0, width);
                nodes.Add((chunk, 1), sum);
            }
            var tree = ChunkTree.Reduce(chunkCount, nodes, (left, right) => { left.Add(right); return left; });

            Assert.Equal(tree.Values, fused);
        }
    }

    [Fact]
    public void MultiplyTransposedB_ARowsResult_DoesNotDependOnItsPositionOrTheRowCount_Bitwise()
    {
        const int k = 300;
        foreach (var (width, n) in Widths().SelectMany(w => ColumnCounts.Select(n => (w, n))))
        {
            var b = Random(n * k, 9);
            var a = Random(23 * k, 10);
            var all = new float[23 * n];
            Gemm.MultiplyTransposedB(a, b, all, 23, n, k, width);
            for (var i = 0; i < 23; i += 5)
            {
                var alone = new float[n];
                Gemm.MultiplyTransposedB(a.AsSpan(i * k, k), b, alone, 1, n, k, width);
                Assert.Equal(all.AsSpan(i * n, n).ToArray(), alone);
                var pair = new float[2 * n];
                Gemm.MultiplyTransposedB(a.AsSpan((i == 0 ? 0 : i - 1) * k, 2 * k), b, pair, 2, n, k, width);
                Assert.Equal(all.AsSpan(i * n, n).ToArray(), pair.AsSpan(i == 0 ? 0 : n, n).ToArray());
            }
        }
    }

    /// <summary>Few panels (A read in place) and many (A packed).</summary>
    private static readonly int[] ColumnCounts = [37, 401];

    private static float[] Random(int count, int seed)
    {
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = (float)(2 * random.NextDouble() - 1);
        return values;
    }

    private static float[] Filled(int count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return values;
    }

    private static float[] Abs(float[] values) => [.. values.Select(Math.Abs)];

    private static void AssertClose(float[] expected, float[] actual, int k, float[] absoluteSums, int n)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var e = 0; e < expected.Length; e++)
        {
            var bound = Tolerance(k, absoluteSums[e]);
            Assert.True(Math.Abs(expected[e] - actual[e]) <= bound, $"element ({e / n}, {e % n}): fast {actual[e]}, reference {expected[e]}, bound {bound}");
        }
    }
}
