using System.Numerics;
using System.Runtime.CompilerServices;
using Backprop.Networks;

namespace Backprop.Engine;

/// <summary>
/// The element-wise passes of the engine, vectorized with <see cref="Vector{T}"/>: o ← f(net) and
/// δ ← δ ⊙ f'(o). They run on a tile's rows right after the GEMM wrote them (while they are in L1).
/// </summary>
/// <remarks>
/// Determinism: every element goes through the same lane-wise vector function; a tail shorter than a
/// vector is copied into a zero-padded vector, computed the same way and copied back. So an element's
/// result never depends on its position in a row, on the row's length or on which tile held it.
/// tanh is the exception that proves the rule: it has no vector form here and runs
/// <see cref="MathF.Tanh"/> on every element.
/// </remarks>
internal static unsafe class Elementwise
{
    /// <summary>x ← f(x) for n floats.</summary>
    public static void Activate(Activation f, float* x, int n)
    {
        switch (f)
        {
            case Activation.Logistic:
                Map<LogisticFunction>(x, n);
                break;
            case Activation.ReLU:
                Map<ReLUFunction>(x, n);
                break;
            case Activation.Tanh:
                for (var i = 0; i < n; i++) x[i] = MathF.Tanh(x[i]);
                break;
            case Activation.Identity:
                break;
            default:
                throw new ArgumentException($"{f} is not element-wise", nameof(f));
        }
    }

    /// <summary>δ ← δ ⊙ f'(net) for n floats, with f' written in terms of the output o = f(net).</summary>
    public static void MultiplyByDerivative(Activation f, float* δ, float* o, int n)
    {
        switch (f)
        {
            case Activation.Logistic:
                Map<LogisticDerivative>(δ, o, n);  // σ' = σ(1 − σ)
                break;
            case Activation.Tanh:
                Map<TanhDerivative>(δ, o, n);      // tanh' = 1 − tanh²
                break;
            case Activation.ReLU:
                Map<ReLUDerivative>(δ, o, n);      // relu' = 1[net > 0]
                break;
            case Activation.Identity:
                break;
            default:
                throw new ArgumentException($"{f} is not element-wise", nameof(f));
        }
    }

    /// <summary>e^x for every lane: Cody–Waite reduction x = n ln 2 + r, a degree-6 polynomial for e^r (Cephes expf), times 2^n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Exp(Vector<float> x)
    {
        x = Vector.Min(Vector.Max(x, new Vector<float>(-87.3f)), new Vector<float>(88.3f)); // 2^n stays a normal float
        var n = Vector.Round(x * new Vector<float>(1.44269504088896341f));                // n = round(x / ln 2)
        var r = Vector.FusedMultiplyAdd(n, new Vector<float>(-0.693359375f), x);            // r = x − n ln 2 in two parts
        r = Vector.FusedMultiplyAdd(n, new Vector<float>(2.12194440e-4f), r);
        var p = new Vector<float>(1.9875691500e-4f);
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(1.3981999507e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(8.3334519073e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(4.1665795894e-2f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(1.6666665459e-1f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(5.0000001201e-1f));
        p = Vector.FusedMultiplyAdd(p, r * r, r + Vector<float>.One);                      // e^r ≈ 1 + r + r²·p(r)
        var twoToN = Vector.AsVectorSingle(Vector.ShiftLeft(Vector.ConvertToInt32(n) + new Vector<int>(127), 23));
        return p * twoToN;
    }

    private interface IFunction
    {
        static abstract Vector<float> Apply(Vector<float> x);
    }

    private interface IFunction2
    {
        static abstract Vector<float> Apply(Vector<float> δ, Vector<float> o);
    }

    private readonly struct LogisticFunction : IFunction
    {
        public static Vector<float> Apply(Vector<float> x) => Vector<float>.One / (Vector<float>.One + Exp(-x)); // σ = 1 / (1 + e^−x)
    }

    private readonly struct ReLUFunction : IFunction
    {
        public static Vector<float> Apply(Vector<float> x) => Vector.Max(x, Vector<float>.Zero);
    }

    private readonly struct LogisticDerivative : IFunction2
    {
        public static Vector<float> Apply(Vector<float> δ, Vector<float> o) => δ * (o * (Vector<float>.One - o));
    }

    private readonly struct TanhDerivative : IFunction2
    {
        public static Vector<float> Apply(Vector<float> δ, Vector<float> o) => δ * (Vector<float>.One - o * o);
    }

    private readonly struct ReLUDerivative : IFunction2
    {
        public static Vector<float> Apply(Vector<float> δ, Vector<float> o) => Vector.ConditionalSelect(Vector.GreaterThan(o, Vector<float>.Zero), δ, Vector<float>.Zero);
    }

    private static void Map<TFunction>(float* x, int n)
        where TFunction : struct, IFunction
    {
        var count = Vector<float>.Count;
        var i = 0;
        for (; i + count <= n; i += count) TFunction.Apply(Vector.Load(x + i)).Store(x + i);
        if (i == n) return;
        var tail = stackalloc float[count];
        for (var j = 0; j < count; j++) tail[j] = i + j < n ? x[i + j] : 0f;
        TFunction.Apply(Vector.Load(tail)).Store(tail);
        for (var j = 0; i + j < n; j++) x[i + j] = tail[j];
    }

    private static void Map<TFunction>(float* δ, float* o, int n)
        where TFunction : struct, IFunction2
    {
        var count = Vector<float>.Count;
        var i = 0;
        for (; i + count <= n; i += count) TFunction.Apply(Vector.Load(δ + i), Vector.Load(o + i)).Store(δ + i);
        if (i == n) return;
        var tail = stackalloc float[2 * count];
        for (var j = 0; j < count; j++)
        {
            tail[j] = i + j < n ? δ[i + j] : 0f;
            tail[count + j] = i + j < n ? o[i + j] : 0f;
        }
        TFunction.Apply(Vector.Load(tail), Vector.Load(tail + count)).Store(tail);
        for (var j = 0; i + j < n; j++) δ[i + j] = tail[j];
    }
}
