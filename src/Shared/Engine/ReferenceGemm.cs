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
            for (var p = 0; p < k; p++) AddScaledRow(c.Slice(i * n, n), a[i * k + p], b.Slice(p * n, n));
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
            for (var i = 0; i < m; i++) AddScaledRow(c.Slice(i * n, n), a[p * m + i], b.Slice(p * n, n));
        }
    }

    /// <summary>C's row ← C's row + a · B's row: one step of k for every column.</summary>
    private static void AddScaledRow(Span<float> cRow, float a, ReadOnlySpan<float> bRow)
    {
        for (var j = 0; j < cRow.Length; j++) cRow[j] += a * bRow[j];
    }

    private static void CheckShapes(int aLength, long aNeeded, int bLength, long bNeeded, int cLength, long cNeeded)
    {
        if (aLength < aNeeded || bLength < bNeeded || cLength < cNeeded)
            throw new ArgumentException($"matrix spans too short: A {aLength}/{aNeeded}, B {bLength}/{bNeeded}, C {cLength}/{cNeeded}");
    }
}
