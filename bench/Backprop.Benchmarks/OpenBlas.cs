using System.Runtime.InteropServices;

namespace Backprop.Benchmarks;

/// <summary>
/// <c>cblas_sgemm</c> from the system's OpenBLAS (Debian: libopenblas0), loaded with
/// <see cref="NativeLibrary"/> when present. A yardstick for the benchmarks (the machine's sgemm peak),
/// not part of training.
/// </summary>
/// <remarks>
/// Training does not use it: OpenBLAS picks kernels, K-blocking and thread splits by shape and thread
/// count, so the bits of a row of C may change with the number of rows or threads, which would break
/// the bitwise equality of shard sums the coordinator relies on (see docs/engine.md).
/// </remarks>
public static unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> Sgemm;
    private static readonly delegate* unmanaged<int, void> SetNumThreads;
    private static readonly delegate* unmanaged<nint> GetConfig;

#pragma warning disable CA1810 // the loads depend on each other; a constructor reads plainer
    static OpenBlas()
#pragma warning restore CA1810
    {
        foreach (var name in new[] { "libopenblas.so.0", "libopenblas.so", "libopenblas" })
        {
            if (!NativeLibrary.TryLoad(name, out var library)) continue;
            if (!NativeLibrary.TryGetExport(library, "cblas_sgemm", out var sgemm)) continue;
            Sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
            if (NativeLibrary.TryGetExport(library, "openblas_set_num_threads", out var set)) SetNumThreads = (delegate* unmanaged<int, void>)set;
            if (NativeLibrary.TryGetExport(library, "openblas_get_config", out var config)) GetConfig = (delegate* unmanaged<nint>)config;
            return;
        }
    }

    /// <summary>Whether OpenBLAS was found.</summary>
    public static bool IsAvailable => Sgemm != null;

    /// <summary>OpenBLAS's build description ("OpenBLAS 0.3.21 … Zen MAX_THREADS=64"), or null.</summary>
    public static string? Configuration => GetConfig == null ? null : Marshal.PtrToStringUTF8(GetConfig());

    /// <summary>Sets OpenBLAS's thread count (its pthread build otherwise uses every core).</summary>
    public static void SetThreads(int threads)
    {
        if (SetNumThreads != null) SetNumThreads(threads);
    }

    /// <summary>C (m × n) = A (m × k) · B (k × n), row-major.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k) =>
        Multiply(a, b, c, m, n, k, transposeA: false, transposeB: false);

    /// <summary>
    /// C (m × n) = op(A) · op(B), row-major, where op(A) is m × k (A stored k × m when
    /// <paramref name="transposeA"/>) and op(B) is k × n (B stored n × k when <paramref name="transposeB"/>):
    /// the three products of a training step are o·Wᵀ (B transposed), Δᵀ·o (A transposed) and Δ·W.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool transposeA, bool transposeB)
    {
        if (!IsAvailable) throw new PlatformNotSupportedException("OpenBLAS (libopenblas.so.0) was not found");
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n) throw new ArgumentException("matrix spans too short");
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
        {
            Sgemm(RowMajor, transposeA ? Trans : NoTrans, transposeB ? Trans : NoTrans, m, n, k, 1f,
                pa, Math.Max(1, transposeA ? m : k), pb, Math.Max(1, transposeB ? k : n), 0f, pc, n);
        }
    }
}
