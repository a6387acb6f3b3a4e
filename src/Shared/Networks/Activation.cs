namespace Backprop.Networks;

/// <summary>The squashing function f of a layer: o = f(net).</summary>
public enum Activation
{
    /// <summary>The seed's logistic function σ(net) = 1 / (1 + e^−net).</summary>
    Logistic,
    /// <summary>tanh(net).</summary>
    Tanh,
    /// <summary>max(0, net); f'(0) is taken as 0.</summary>
    ReLU,
    /// <summary>e^net_j / Σ_k e^net_k over the layer; output layer only.</summary>
    Softmax,
    /// <summary>o = net; output layer only (regression).</summary>
    Identity,
}

/// <summary>
/// The activation functions in double precision, one neuron at a time, as the article writes them.
/// The batched engine has its own float loops; tests hold the two together.
/// </summary>
public static class Activations
{
    /// <summary>o = f(net) for an element-wise activation.</summary>
    public static double Apply(Activation f, double net) => f switch
    {
        Activation.Logistic => 1.0 / (1.0 + Math.Exp(-net)),
        Activation.Tanh => Math.Tanh(net),
        Activation.ReLU => net > 0 ? net : 0,
        Activation.Identity => net,
        _ => throw new ArgumentException($"{f} is not element-wise", nameof(f)),
    };

    /// <summary>f'(net) for an element-wise activation.</summary>
    public static double Derivative(Activation f, double net)
    {
        switch (f)
        {
            case Activation.Logistic:
                var σ = Apply(f, net);
                return σ * (1 - σ);
            case Activation.Tanh:
                var t = Math.Tanh(net);
                return 1 - t * t;
            case Activation.ReLU:
                return net > 0 ? 1 : 0;
            case Activation.Identity:
                return 1;
            default:
                throw new ArgumentException($"{f} is not element-wise", nameof(f));
        }
    }

    /// <summary>Softmax of a whole layer, shifted by the maximum for stability.</summary>
    public static double[] Softmax(ReadOnlySpan<double> net)
    {
        var max = double.NegativeInfinity;
        foreach (var v in net) max = Math.Max(max, v);
        var o = new double[net.Length];
        double sum = 0;
        for (var j = 0; j < net.Length; j++) sum += o[j] = Math.Exp(net[j] - max);
        for (var j = 0; j < net.Length; j++) o[j] /= sum;
        return o;
    }

    /// <summary>Whether f may be used in a hidden layer.</summary>
    public static bool IsHidden(Activation f) => f is Activation.Logistic or Activation.Tanh or Activation.ReLU;

    /// <summary>The name used on the command line and in files.</summary>
    public static string Name(Activation f) => f switch
    {
        Activation.Logistic => "logistic",
        Activation.Tanh => "tanh",
        Activation.ReLU => "relu",
        Activation.Softmax => "softmax",
        Activation.Identity => "identity",
        _ => f.ToString(),
    };

    /// <summary>Parses a command-line name ("logistic", "sigmoid", "tanh", "relu", "softmax", "identity").</summary>
    public static bool TryParse(string text, out Activation f)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "logistic" or "sigmoid": f = Activation.Logistic; return true;
            case "tanh": f = Activation.Tanh; return true;
            case "relu": f = Activation.ReLU; return true;
            case "softmax": f = Activation.Softmax; return true;
            case "identity" or "linear": f = Activation.Identity; return true;
            default: f = default; return false;
        }
    }
}
