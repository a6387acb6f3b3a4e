namespace Backprop.Networks;

/// <summary>The per-sample cost C(x); the training cost is its average over the samples.</summary>
public enum Cost
{
    /// <summary>The seed's quadratic cost C = ½‖a − y‖².</summary>
    Quadratic,
    /// <summary>
    /// Cross-entropy: −Σ y ln a with a softmax output, or −Σ [y ln a + (1 − y) ln(1 − a)] with a
    /// logistic output. Either way the output error is δ_L = a − y.
    /// </summary>
    CrossEntropy,
}

/// <summary>The cost functions in double precision, per sample, as the article writes them.</summary>
public static class Costs
{
    /// <summary>C(x) from the output layer's nets (for a numerically stable cross-entropy) and outputs.</summary>
    public static double Of(Cost cost, Activation output, ReadOnlySpan<double> net, ReadOnlySpan<double> a, ReadOnlySpan<double> y)
    {
        double c = 0;
        switch (cost)
        {
            case Cost.Quadratic:
                for (var j = 0; j < a.Length; j++) c += 0.5 * (a[j] - y[j]) * (a[j] - y[j]);
                return c;
            case Cost.CrossEntropy when output == Activation.Softmax:
                // ln a_j = net_j − ln Σ_k e^net_k
                var max = double.NegativeInfinity;
                foreach (var v in net) max = Math.Max(max, v);
                double sum = 0;
                foreach (var v in net) sum += Math.Exp(v - max);
                var logSum = max + Math.Log(sum);
                for (var j = 0; j < a.Length; j++) c -= y[j] * (net[j] - logSum);
                return c;
            case Cost.CrossEntropy when output == Activation.Logistic:
                // ln σ(net) = −softplus(−net), ln(1 − σ(net)) = −softplus(net)
                for (var j = 0; j < a.Length; j++) c += y[j] * Softplus(-net[j]) + (1 - y[j]) * Softplus(net[j]);
                return c;
            default:
                throw new ArgumentException($"cross-entropy needs a softmax or logistic output, not {output}");
        }
    }

    /// <summary>ln(1 + e^x) without overflow.</summary>
    public static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

    /// <summary>Whether the cost can be used with this output activation.</summary>
    public static bool Supports(Cost cost, Activation output) =>
        cost == Cost.Quadratic || output is Activation.Softmax or Activation.Logistic;

    /// <summary>The name used on the command line and in files.</summary>
    public static string Name(Cost cost) => cost == Cost.Quadratic ? "quadratic" : "cross-entropy";

    /// <summary>Parses "quadratic" / "mse" or "cross-entropy" / "ce".</summary>
    public static bool TryParse(string text, out Cost cost)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "quadratic" or "mse": cost = Cost.Quadratic; return true;
            case "cross-entropy" or "crossentropy" or "ce": cost = Cost.CrossEntropy; return true;
            default: cost = default; return false;
        }
    }
}
