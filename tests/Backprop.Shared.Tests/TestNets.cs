using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using MathNet.Numerics.Random;

namespace Backprop.Shared.Tests;

/// <summary>Small random networks and data sets for the math tests.</summary>
internal static class TestNets
{
    /// <summary>Every valid (hidden activation, output activation, cost) combination.</summary>
    public static TheoryData<Activation, Activation, Cost> AllCombinations()
    {
        var data = new TheoryData<Activation, Activation, Cost>();
        foreach (var hidden in new[] { Activation.Logistic, Activation.Tanh, Activation.ReLU })
        {
            foreach (var output in Enum.GetValues<Activation>())
            {
                foreach (var cost in Enum.GetValues<Cost>())
                {
                    if (Costs.Supports(cost, output)) data.Add(hidden, output, cost);
                }
            }
        }
        return data;
    }

    /// <summary>A network of <paramref name="sizes"/> with seeded weights and small random biases.</summary>
    public static (Architecture Architecture, float[] Parameters) Network(int[] sizes, Activation hidden, Activation output, Cost cost, int seed)
    {
        var architecture = new Architecture(sizes, hidden, output, cost);
        var parameters = Initialization.Create(architecture, seed);
        var random = new Xoshiro256StarStar(seed + 1000, threadSafe: false);
        for (var l = 0; l < architecture.LayerCount; l++)
        {
            var b = architecture.Biases(parameters.AsSpan(), l);
            for (var j = 0; j < b.Length; j++) b[j] = (float)(0.2 * (random.NextDouble() - 0.5));
        }
        return (architecture, parameters);
    }

    /// <summary>
    /// <see cref="Network"/> of <paramref name="sizes"/> and <see cref="Data"/> for it: <paramref name="samples"/>
    /// samples with as many features as the network has inputs and as many classes as it has outputs.
    /// </summary>
    public static (Architecture Architecture, float[] Parameters, DataSet Data) NetworkAndData(int[] sizes, Activation hidden, Activation output, Cost cost,
        int seed, int samples, int dataSeed)
    {
        var (architecture, parameters) = Network(sizes, hidden, output, cost, seed);
        return (architecture, parameters, Data(samples, sizes[0], sizes[^1], dataSeed));
    }

    /// <summary>n samples of d features uniform in [−1, 1] with labels uniform in [0, classes).</summary>
    public static DataSet Data(int n, int d, int classes, int seed)
    {
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        var features = new float[n * d];
        for (var i = 0; i < features.Length; i++) features[i] = (float)(2 * random.NextDouble() - 1);
        var labels = new int[n];
        for (var i = 0; i < n; i++) labels[i] = random.Next(classes);
        return new DataSet("random", features, d, labels, classes, new SampleOrigin("random", "sample", 0));
    }

    /// <summary>The float array widened to double.</summary>
    public static double[] ToDouble(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }

    /// <summary>Σ over all samples of the reference per-sample gradients, and Σ C(x).</summary>
    public static (double[] Gradient, double Loss) ReferenceSum(Architecture architecture, double[] parameters, DataSet data, IEnumerable<int>? indices = null)
    {
        var total = new double[parameters.Length];
        var sample = new double[parameters.Length];
        var y = new double[architecture.OutputSize];
        double loss = 0;
        foreach (var i in indices ?? Enumerable.Range(0, data.Count))
        {
            Targets.Encode(data.Labels[i], y);
            loss += ReferenceNetwork.SampleGradient(architecture, parameters, ToDouble(data.Row(i)), y, sample);
            for (var p = 0; p < total.Length; p++) total[p] += sample[p];
        }
        return (total, loss);
    }
}
