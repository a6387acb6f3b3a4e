using Backprop.Networks;

namespace Backprop.Engine;

/// <summary>
/// The output layer of the engine, one row (one sample) at a time: outputs a = f(net), the cost C(x) and
/// the output error δ_L. Scalar on purpose: the layer is narrow (a few units), and its work is the
/// exponentials.
/// </summary>
internal static class OutputLayer
{
    /// <summary>Turns one row of output nets into outputs a and returns C(x) for <paramref name="label"/>.</summary>
    public static float OutputsAndCost(Architecture architecture, Span<float> row, int label)
    {
        var units = row.Length;
        var f = architecture.Output;
        if (architecture.Cost == Cost.CrossEntropy && f == Activation.Softmax)
        {
            var netLabel = row[label];
            return SoftmaxRow(row) - netLabel; // −ln a_label = ln Σ e^net − net_label
        }
        if (architecture.Cost == Cost.CrossEntropy)
        {
            // Logistic outputs: Σ_j y_j softplus(−net_j) + (1 − y_j) softplus(net_j).
            var c = 0f;
            for (var j = 0; j < units; j++)
            {
                var y = Targets.Target(label, units, j);
                var net = row[j];
                c += y * Softplus(-net) + (1 - y) * Softplus(net);
                row[j] = 1f / (1f + MathF.Exp(-net));
            }
            return c;
        }
        Activate(f, row);
        var quadratic = 0f;
        for (var j = 0; j < units; j++)
        {
            var d = row[j] - Targets.Target(label, units, j);
            quadratic += 0.5f * d * d;
        }
        return quadratic;
    }

    /// <summary>δ_L for one row, from its outputs a and label.</summary>
    public static void Error(Architecture architecture, ReadOnlySpan<float> a, int label, Span<float> δ)
    {
        var units = a.Length;
        for (var j = 0; j < units; j++) δ[j] = a[j] - Targets.Target(label, units, j); // a − y
        if (architecture.Cost == Cost.CrossEntropy) return;
        if (architecture.Output == Activation.Softmax)
        {
            // δ_j = a_j (g_j − Σ_k a_k g_k) with g = a − y.
            var s = 0f;
            for (var k = 0; k < units; k++) s += a[k] * δ[k];
            for (var j = 0; j < units; j++) δ[j] = a[j] * (δ[j] - s);
            return;
        }
        for (var j = 0; j < units; j++)
        {
            δ[j] *= architecture.Output switch
            {
                Activation.Logistic => a[j] * (1 - a[j]),  // σ' = σ(1 − σ)
                Activation.Tanh => 1 - a[j] * a[j],        // tanh' = 1 − tanh²
                Activation.ReLU => a[j] > 0 ? 1 : 0,       // relu' = 1[net > 0]
                _ => 1,                                    // identity
            };
        }
    }

    /// <summary>Softmax of one row in place; returns ln Σ e^net.</summary>
    private static float SoftmaxRow(Span<float> row)
    {
        var max = float.NegativeInfinity;
        foreach (var v in row) max = MathF.Max(max, v);
        var sum = 0f;
        for (var j = 0; j < row.Length; j++) sum += row[j] = MathF.Exp(row[j] - max);
        var inverse = 1f / sum;
        for (var j = 0; j < row.Length; j++) row[j] *= inverse;
        return max + MathF.Log(sum);
    }

    /// <summary>softplus(x) = ln(1 + eˣ), written so that eˣ cannot overflow.</summary>
    private static float Softplus(float x) => x > 0 ? x + MathF.Log(1 + MathF.Exp(-x)) : MathF.Log(1 + MathF.Exp(x));

    /// <summary>a ← f(net) for one output row.</summary>
    public static void Activate(Activation f, Span<float> row)
    {
        if (f == Activation.Softmax) SoftmaxRow(row);
        else ActivateRow(f, row);
    }

    /// <summary>a ← f(net) element by element (scalar: the output layer is narrow).</summary>
    private static void ActivateRow(Activation f, Span<float> row)
    {
        for (var j = 0; j < row.Length; j++)
        {
            row[j] = f switch
            {
                Activation.Logistic => 1f / (1f + MathF.Exp(-row[j])),
                Activation.Tanh => MathF.Tanh(row[j]),
                Activation.ReLU => MathF.Max(row[j], 0f),
                _ => row[j],
            };
        }
    }
}
