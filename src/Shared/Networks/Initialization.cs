using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace Backprop.Networks;

/// <summary>Seeded initial weights: Xavier (Glorot) for logistic/tanh/softmax layers, He for ReLU; zero biases.</summary>
public static class Initialization
{
    /// <summary>A fresh flat parameter array for <paramref name="architecture"/>, the same for the same seed on every machine.</summary>
    public static float[] Create(Architecture architecture, int seed)
    {
        var parameters = new float[architecture.ParameterCount];
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        for (var l = 0; l < architecture.LayerCount; l++)
        {
            var fanIn = architecture.InputsOf(l);
            var fanOut = architecture.OutputsOf(l);
            var σ = architecture.ActivationOf(l) == Activation.ReLU
                ? Math.Sqrt(2.0 / fanIn)               // He et al. 2015
                : Math.Sqrt(2.0 / (fanIn + fanOut));  // Glorot & Bengio 2010
            var normal = new Normal(0, σ, random);
            var weights = architecture.Weights(parameters.AsSpan(), l);
            for (var i = 0; i < weights.Length; i++) weights[i] = (float)normal.Sample();
        }
        return parameters;
    }
}
