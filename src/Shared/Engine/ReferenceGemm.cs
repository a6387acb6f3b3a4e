namespace Backprop.Engine;

/// <summary>
/// The three matrix products backpropagation needs, on row-major float spans, written as plainly as
/// the math: the reference the fast <see cref="Gemm"/> is held to in the tests (and the "naive" line of
/// the benchmarks). Shapes are written (rows × columns); every element of C is a sum over k taken in
/// increasing k.
/// </summary>
public static class ReferenceGemm
{
    /// <summary>
    /// C (m × n) = A (m × k) · Bᵀ with B (n × k). The forward pass: net = o · Wᵀ.
    /// </summary>
    public static void MultiplyTransposedB(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k)
    {
        CheckShapes(a.Length, (long)m * k, b.Length, (long)n * k, c.Length, (long)m * n);
        for (var i = 0; i < m; i++)
        {
            var row = a.Slice(i * k, k);
            for (var j = 0; j < n; j++)
            {
                var column = b.Slice(j * k, k);
                var sum = 0f;
                for (var p = 0; p < k; p++) sum += row[p] * column[p];
                c[i * n + j] = sum;
            }
        }
    }

    /// <summary>
    /// C (m × n) = A (m × k) · B (k × n). The backward pass: δ_below = δ · W.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k)
    {
        CheckShapes(a.Length, (long)m * k, b.Length, (long)k * n, c.Length, (long)m * n);
        c[..(m * n)].Clear();
        for (var i = 0; i < m; i++)
        {
            var cRow = c.Slice(i * n, n);
            for (var p = 0; p < k; p++)
            {
                var aip = a[i * k + p];
                var bRow = b.Slice(p * n, n);
                for (var j = 0; j < n; j++) cRow[j] += aip * bRow[j];
            }
        }
    }

    /// <summary>
    /// C (m × n) = Aᵀ · B with A (k × m) and B (k × n). The weight gradient: ∂C/∂W = δᵀ · o, summed
    /// over the k samples.
    /// </summary>
    public static void MultiplyTransposedA(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k)
    {
        CheckShapes(a.Length, (long)k * m, b.Length, (long)k * n, c.Length, (long)m * n);
        c[..(m * n)].Clear();
        for (var p = 0; p < k; p++)
        {
            var bRow = b.Slice(p * n, n);
            for (var i = 0; i < m; i++)
            {
                var api = a[p * m + i];
                var cRow = c.Slice(i * n, n);
                for (var j = 0; j < n; j++) cRow[j] += api * bRow[j];
            }
        }
    }

    private static void CheckShapes(int aLength, long aNeeded, int bLength, long bNeeded, int cLength, long cNeeded)
    {
        if (aLength < aNeeded || bLength < bNeeded || cLength < cNeeded)
            throw new ArgumentException($"matrix spans too short: A {aLength}/{aNeeded}, B {bLength}/{bNeeded}, C {cLength}/{cNeeded}");
    }
}
