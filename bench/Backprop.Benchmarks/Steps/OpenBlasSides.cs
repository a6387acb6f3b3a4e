using System.Diagnostics;
using Backprop.Engine;
using Backprop.Networks;

namespace Backprop.Benchmarks.Steps;

/// <summary>
/// OpenBLAS as the yardstick of a step: the machine's sgemm peak (1024³ on 1 thread), as a best-of
/// now and as a side timed beside every repetition.
/// </summary>
internal static class OpenBlasSides
{
    /// <summary>The side of the square sgemm that stands for the machine's peak.</summary>
    public const int SgemmSize = 1024;

    /// <summary>The best-of-15 GFLOP/s of 1024³ on 1 thread now: OpenBLAS's (null when it is not installed) and our Gemm.Multiply's.</summary>
    public sealed record SgemmNow(double? OpenBlas, string? Configuration, double Ours);

    /// <summary>Times both sgemms, best of 15 after one call.</summary>
    public static SgemmNow BestOfNow()
    {
        const int n = SgemmSize;
        var (a, b, c) = SgemmOperands();
        var ours = BestGflops(() => Gemm.Multiply(a, b, c, n, n, n), 2.0 * n * n * n);
        if (!OpenBlas.IsAvailable) return new SgemmNow(null, null, ours);
        OpenBlas.SetThreads(1);
        var peak = BestGflops(() => OpenBlas.Multiply(a, b, c, n, n, n), 2.0 * n * n * n);
        return new SgemmNow(peak, OpenBlas.Configuration, ours);
    }

    /// <summary>
    /// A side that multiplies 1024 × 1024 matrices in OpenBLAS on 1 thread, for as many flops as
    /// <c>steps</c> training steps of <paramref name="flopsPerSample"/> × <paramref name="batch"/>, and
    /// gives its rate in those samples/s: ours over it is our GFLOP/s over the sgemm peak of the moment.
    /// </summary>
    public static Func<int, double> SgemmPeak(double flopsPerSample, int batch)
    {
        const int n = SgemmSize;
        var (a, b, c) = SgemmOperands();
        const double perMultiply = 2.0 * n * n * n;
        return steps =>
        {
            OpenBlas.SetThreads(1);
            var multiplies = Math.Max(1, (int)Math.Round(steps * batch * flopsPerSample / perMultiply));
            var clock = Stopwatch.StartNew();
            for (var m = 0; m < multiplies; m++) OpenBlas.Multiply(a, b, c, n, n, n);
            return multiplies * perMultiply / flopsPerSample / clock.Elapsed.TotalSeconds;
        };
    }

    /// <summary>A, B (random in [−0.5, 0.5)) and C for a <see cref="SgemmSize"/>² product.</summary>
    private static (float[] A, float[] B, float[] C) SgemmOperands()
    {
        const int n = SgemmSize;
        var random = new Random(1);
        var a = new float[n * n];
        var b = new float[n * n];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = (float)random.NextDouble() - 0.5f;
            b[i] = (float)random.NextDouble() - 0.5f;
        }
        return (a, b, new float[n * n]);
    }

    private static double BestGflops(Action multiply, double flops)
    {
        multiply();
        var best = double.MaxValue;
        for (var r = 0; r < 15; r++)
        {
            var clock = Stopwatch.StartNew();
            multiply();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return flops / best / 1e9;
    }
}

/// <summary>
/// The products of one training step of an architecture at a batch size, in OpenBLAS and nothing
/// else: o_l·W_lᵀ and Δ_lᵀ·o_l for every layer, Δ_l·W_l for every layer but the first (what
/// <see cref="StepFlops.PerSample"/> counts), on buffers of the step's shapes.
/// </summary>
internal sealed class GemmFloor
{
    private readonly int[] _sizes;
    private readonly int _batch;
    private readonly float[][] _outputs, _weights, _deltas, _gradients;

    public GemmFloor(Architecture architecture, int batch)
    {
        _sizes = [.. architecture.Sizes];
        _batch = batch;
        var L = _sizes.Length - 1;
        var random = new Random(1);
        float[] Values(long count)
        {
            var values = new float[count];
            for (var i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble() - 0.5f;
            return values;
        }
        _outputs = [.. Enumerable.Range(0, L + 1).Select(l => Values((long)batch * _sizes[l]))];
        _weights = [.. Enumerable.Range(0, L).Select(l => Values((long)_sizes[l] * _sizes[l + 1]))];
        _deltas = [.. Enumerable.Range(0, L).Select(l => Values((long)batch * _sizes[l + 1]))];
        _gradients = [.. Enumerable.Range(0, L).Select(l => new float[(long)_sizes[l] * _sizes[l + 1]])];
    }

    /// <summary>
    /// Samples/s of <paramref name="steps"/> steps' products on one OpenBLAS thread. (Only one: OpenBLAS's
    /// pthreads keep spinning for a while after a call, and would slow whatever is timed next.)
    /// </summary>
    public double Rate(int steps)
    {
        var clock = Stopwatch.StartNew();
        for (var s = 0; s < steps; s++) Step(null);
        return steps * _batch / clock.Elapsed.TotalSeconds;
    }

    /// <summary>One step's products on one OpenBLAS thread; with <paramref name="times"/>, each product's time is added to it.</summary>
    public void Step(PhaseTimes? times)
    {
        OpenBlas.SetThreads(1);
        var L = _sizes.Length - 1;
        var since = Stopwatch.GetTimestamp();
        for (var l = 0; l < L; l++)
        {
            OpenBlas.Multiply(_outputs[l], _weights[l], _outputs[l + 1], _batch, _sizes[l + 1], _sizes[l], transposeA: false, transposeB: true);
            if (times is not null) since = times.Add(EnginePhase.Forward, l, since);
        }
        for (var l = L - 1; l >= 0; l--)
        {
            OpenBlas.Multiply(_deltas[l], _outputs[l], _gradients[l], _sizes[l + 1], _sizes[l], _batch, transposeA: true, transposeB: false);
            if (times is not null) since = times.Add(EnginePhase.WeightGradient, l, since);
            if (l == 0) continue;
            OpenBlas.Multiply(_deltas[l], _weights[l], _deltas[l - 1], _batch, _sizes[l], _sizes[l + 1], transposeA: false, transposeB: false);
            if (times is not null) since = times.Add(EnginePhase.BackwardErrors, l, since);
        }
    }
}
