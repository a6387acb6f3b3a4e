namespace Backprop.Networks;

/// <summary>
/// The article's backpropagation, one sample and one neuron at a time, in double precision.
/// Slow on purpose: this is the oracle the batched engine is held to in the tests.
/// </summary>
/// <remarks>
/// Notation: o_i is the output of neuron i in the layer below (o = x for the input layer),
/// net_j = Σ_i w_ji o_i + b_j, o_j = f(net_j). The output error is
/// δ_j = ∂C/∂net_j = (o_j − y_j) f'(net_j) for the quadratic cost, and δ_j = o_j − y_j for
/// cross-entropy with a softmax or logistic output. A hidden neuron's error is
/// δ_j = f'(net_j) Σ_k w_kj δ_k over the neurons k of the next layer. Then ∂C/∂w_ji = o_i δ_j and
/// ∂C/∂b_j = δ_j.
/// </remarks>
public static class ReferenceNetwork
{
    /// <summary>The nets and outputs of every layer for one sample; outputs[0] is the input.</summary>
    public static (double[][] Nets, double[][] Outputs) Forward(Architecture architecture, ReadOnlySpan<double> parameters, ReadOnlySpan<double> x)
    {
        var nets = new double[architecture.LayerCount][];
        var outputs = new double[architecture.LayerCount + 1][];
        outputs[0] = x.ToArray();
        for (var l = 0; l < architecture.LayerCount; l++)
        {
            int inputs = architecture.InputsOf(l), units = architecture.OutputsOf(l);
            var w = parameters.Slice(architecture.WeightOffset(l), inputs * units);
            var b = parameters.Slice(architecture.BiasOffset(l), units);
            var o = outputs[l];
            var net = new double[units];
            for (var j = 0; j < units; j++)
            {
                var sum = b[j];
                for (var i = 0; i < inputs; i++) sum += w[j * inputs + i] * o[i];
                net[j] = sum;
            }
            nets[l] = net;
            var f = architecture.ActivationOf(l);
            if (f == Activation.Softmax)
            {
                outputs[l + 1] = Activations.Softmax(net);
            }
            else
            {
                outputs[l + 1] = new double[units];
                for (var j = 0; j < units; j++) outputs[l + 1][j] = Activations.Apply(f, net[j]);
            }
        }
        return (nets, outputs);
    }

    /// <summary>C(x) for one sample.</summary>
    public static double SampleCost(Architecture architecture, ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        var (nets, outputs) = Forward(architecture, parameters, x);
        return Costs.Of(architecture.Cost, architecture.Output, nets[^1], outputs[^1], y);
    }

    /// <summary>∂C(x)/∂w and ∂C(x)/∂b for one sample, in the flat parameter layout; also returns C(x).</summary>
    public static double SampleGradient(Architecture architecture, ReadOnlySpan<double> parameters, ReadOnlySpan<double> x, ReadOnlySpan<double> y, Span<double> gradient)
    {
        var (nets, outputs) = Forward(architecture, parameters, x);
        var L = architecture.LayerCount;

        // δ at the output layer.
        var a = outputs[L];
        var netL = nets[L - 1];
        var δ = new double[a.Length];
        if (architecture.Cost == Cost.CrossEntropy)
        {
            for (var j = 0; j < a.Length; j++) δ[j] = a[j] - y[j];
        }
        else if (architecture.Output == Activation.Softmax)
        {
            // ∂C/∂net_j = Σ_k (a_k − y_k) ∂a_k/∂net_j with ∂a_k/∂net_j = a_k (1[k=j] − a_j).
            for (var j = 0; j < a.Length; j++)
            {
                double sum = 0;
                for (var k = 0; k < a.Length; k++) sum += (a[k] - y[k]) * a[k] * ((k == j ? 1 : 0) - a[j]);
                δ[j] = sum;
            }
        }
        else
        {
            for (var j = 0; j < a.Length; j++) δ[j] = (a[j] - y[j]) * Activations.Derivative(architecture.Output, netL[j]);
        }

        for (var l = L - 1; l >= 0; l--)
        {
            int inputs = architecture.InputsOf(l), units = architecture.OutputsOf(l);
            var o = outputs[l];
            // ∂C/∂w_ji = o_i δ_j, ∂C/∂b_j = δ_j.
            var dw = gradient.Slice(architecture.WeightOffset(l), inputs * units);
            var db = gradient.Slice(architecture.BiasOffset(l), units);
            for (var j = 0; j < units; j++)
            {
                for (var i = 0; i < inputs; i++) dw[j * inputs + i] = o[i] * δ[j];
                db[j] = δ[j];
            }
            if (l == 0) break;

            // δ of the layer below: δ_i = f'(net_i) Σ_j w_ji δ_j.
            var w = parameters.Slice(architecture.WeightOffset(l), inputs * units);
            var below = new double[inputs];
            var f = architecture.ActivationOf(l - 1);
            for (var i = 0; i < inputs; i++)
            {
                double sum = 0;
                for (var j = 0; j < units; j++) sum += w[j * inputs + i] * δ[j];
                below[i] = sum * Activations.Derivative(f, nets[l - 1][i]);
            }
            δ = below;
        }
        return Costs.Of(architecture.Cost, architecture.Output, netL, a, y);
    }
}
