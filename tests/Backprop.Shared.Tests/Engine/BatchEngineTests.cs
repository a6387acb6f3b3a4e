using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Shared.Tests.Engine;

public class BatchEngineTests
{
    /// <summary>Float32 engine vs double reference: |engine − reference| ≤ 1e-4 · max(1, |reference|).</summary>
    private const double FloatTolerance = 1e-4;

    [Theory]
    [MemberData(nameof(TestNets.AllCombinations), MemberType = typeof(TestNets))]
    public void Gradient_AnyActivationAndCost_EqualsSumOfReferenceSampleGradients(Activation hidden, Activation output, Cost cost)
    {
        var outputs = output == Activation.Softmax ? 4 : 3;
        var (architecture, θ) = TestNets.Network([5, 7, 6, outputs], hidden, output, cost, seed: 21);
        var data = TestNets.Data(23, 5, outputs, seed: 5);
        var engine = new BatchEngine(architecture, chunkSize: 4);
        var sum = new GradientSum(architecture.ParameterCount);

        engine.Gradient(θ, data, Enumerable.Range(0, data.Count).ToArray(), sum);

        var (expected, expectedLoss) = TestNets.ReferenceSum(architecture, TestNets.ToDouble(θ), data);
        Assert.Equal(data.Count, sum.SampleCount);
        AssertClose(expected, sum.Values);
        Assert.True(Math.Abs(expectedLoss - sum.LossSum) <= FloatTolerance * Math.Max(1, Math.Abs(expectedLoss)), $"loss {sum.LossSum} vs {expectedLoss}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 8)]
    [InlineData(3, 2)]
    [InlineData(17, 5)]
    public void Gradient_OddShapes_EqualsReference(int samples, int chunkSize)
    {
        var (architecture, θ) = TestNets.Network([13, 9, 1], Activation.Tanh, Activation.Logistic, Cost.CrossEntropy, seed: 2);
        var data = TestNets.Data(samples, 13, 2, seed: 8);
        var sum = new GradientSum(architecture.ParameterCount);
        new BatchEngine(architecture, chunkSize).Gradient(θ, data, Enumerable.Range(0, samples).ToArray(), sum);
        var (expected, _) = TestNets.ReferenceSum(architecture, TestNets.ToDouble(θ), data);
        AssertClose(expected, sum.Values);
    }

    [Fact]
    public void Evaluate_CountsCorrectPredictionsAndLoss_LikeTheReference()
    {
        var (architecture, θ) = TestNets.Network([4, 6, 3], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 4);
        var data = TestNets.Data(40, 4, 3, seed: 9);
        var (loss, correct) = new BatchEngine(architecture, 16).Evaluate(θ, data);

        var θd = TestNets.ToDouble(θ);
        double expectedLoss = 0;
        var expectedCorrect = 0;
        var y = new double[3];
        for (var i = 0; i < data.Count; i++)
        {
            Targets.Encode(data.Labels[i], y);
            var x = TestNets.ToDouble(data.Row(i));
            expectedLoss += ReferenceNetwork.SampleCost(architecture, θd, x, y);
            var a = ReferenceNetwork.Forward(architecture, θd, x).Outputs[^1];
            if (Array.IndexOf(a, a.Max()) == data.Labels[i]) expectedCorrect++;
        }
        Assert.Equal(expectedCorrect, correct);
        Assert.Equal(expectedLoss, loss, 3);
    }

    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var p = 0; p < expected.Length; p++)
        {
            Assert.True(Math.Abs(expected[p] - actual[p]) <= FloatTolerance * Math.Max(1, Math.Abs(expected[p])),
                $"parameter {p}: engine {actual[p]}, reference {expected[p]}");
        }
    }
}
