using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Shared.Tests.Engine;

public class BatchEngineTests
{
    /// <summary>Float32 engine vs double reference: |engine − reference| ≤ 1e-4 · max(1, |reference|).</summary>
    private const double FloatTolerance = 1e-4;
    private static readonly int[] ThreadCounts = [1, 2, 3];
    private static readonly int[] BlockSizes = [3, 6, 12, 48, 1024];
    private static readonly int[] OutOfRange = [0, 5];

    [Theory]
    [MemberData(nameof(TestNets.AllCombinations), MemberType = typeof(TestNets))]
    public void Gradient_AnyActivationAndCost_EqualsSumOfReferenceSampleGradients(Activation hidden, Activation output, Cost cost)
    {
        var (architecture, θ, data) = SmallNetwork(hidden, output, cost);
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

    [Theory]
    [MemberData(nameof(TestNets.AllCombinations), MemberType = typeof(TestNets))]
    public void Gradient_PortableKernel_EqualsSumOfReferenceSampleGradients(Activation hidden, Activation output, Cost cost)
    {
        var (architecture, θ, data) = SmallNetwork(hidden, output, cost);
        var engine = new BatchEngine(architecture, chunkSize: 4, threadCount: 2, Kernels.PortableWidth, BatchEngine.DefaultTargetBlockRows);
        var sum = new GradientSum(architecture.ParameterCount);

        engine.Gradient(θ, data, Enumerable.Range(0, data.Count).ToArray(), sum);

        var (expected, _) = TestNets.ReferenceSum(architecture, TestNets.ToDouble(θ), data);
        AssertClose(expected, sum.Values);
    }

    [Theory]
    [InlineData(Activation.ReLU, Activation.Softmax, Cost.CrossEntropy)]
    [InlineData(Activation.Logistic, Activation.Logistic, Cost.Quadratic)]
    [InlineData(Activation.Tanh, Activation.Softmax, Cost.Quadratic)]
    public void Gradient_OneTwoThreeThreads_GiveTheSameBits(Activation hidden, Activation output, Cost cost)
    {
        // Several tiles and panels per layer (400 units: A packed on one thread, read in place on two or
        // three), and 300 samples: two blocks of 256.
        var (architecture, θ) = TestNets.Network([37, 400, 19, 10], hidden, output, cost, seed: 12);
        var data = TestNets.Data(300, 37, 10, seed: 13);
        var batch = Enumerable.Range(0, data.Count).Select(i => (i * 7) % data.Count).ToArray();
        foreach (var width in Kernels.WideSupported ? [Kernels.PortableWidth, Kernels.WideWidth] : new[] { Kernels.PortableWidth })
        {
            var sums = ThreadCounts.Select(threads =>
            {
                var sum = new GradientSum(architecture.ParameterCount);
                new BatchEngine(architecture, 4, threads, width, BatchEngine.DefaultTargetBlockRows).Gradient(θ, data, batch, sum);
                return sum;
            }).ToArray();

            foreach (var other in sums[1..])
            {
                Assert.Equal(sums[0].Values, other.Values); // bitwise
                Assert.Equal(sums[0].LossSum, other.LossSum);
                Assert.Equal(sums[0].CorrectCount, other.CorrectCount);
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestNets.AllCombinations), MemberType = typeof(TestNets))]
    public void Gradient_PortableAndAvx2Kernels_GiveTheSameBits(Activation hidden, Activation output, Cost cost)
    {
        // Both run the same FMA chains (Vector128 or Vector256 lanes, fused either way) and the same lane functions.
        if (!Kernels.WideSupported) return;
        var outputs = output == Activation.Softmax ? 10 : 3;
        var (architecture, θ) = TestNets.Network([29, 400, 17, outputs], hidden, output, cost, seed: 31);
        var data = TestNets.Data(70, 29, outputs, seed: 32);
        var batch = Enumerable.Range(0, data.Count).ToArray();
        var portable = new GradientSum(architecture.ParameterCount);
        var wide = new GradientSum(architecture.ParameterCount);
        new BatchEngine(architecture, 4, 1, Kernels.PortableWidth, BatchEngine.DefaultTargetBlockRows).Gradient(θ, data, batch, portable);
        new BatchEngine(architecture, 4, 1, Kernels.WideWidth, BatchEngine.DefaultTargetBlockRows).Gradient(θ, data, batch, wide);
        Assert.Equal(portable.Values, wide.Values);
        Assert.Equal(portable.LossSum, wide.LossSum);
    }

    [Fact]
    public void Gradient_BlockSize_DoesNotChangeTheBits()
    {
        var (architecture, θ) = TestNets.Network([11, 23, 7], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 3);
        var data = TestNets.Data(203, 11, 7, seed: 4);
        var batch = Enumerable.Range(0, data.Count).Reverse().ToArray();
        var sums = BlockSizes.Select(blockRows =>
        {
            var sum = new GradientSum(architecture.ParameterCount);
            var engine = new BatchEngine(architecture, 3, 2, Kernels.DefaultWidth, blockRows);
            engine.Gradient(θ, data, batch, sum);
            return sum;
        }).ToArray();

        foreach (var other in sums[1..])
        {
            Assert.Equal(sums[0].Values, other.Values);
            Assert.Equal(sums[0].LossSum, other.LossSum);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Gradient_WithPhaseTimes_GivesTheSameBitsAndTimesEveryPhaseThatRuns(int threads)
    {
        var (architecture, θ) = TestNets.Network([11, 23, 17, 7], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 5);
        var data = TestNets.Data(300, 11, 7, seed: 6);
        var batch = Enumerable.Range(0, data.Count).ToArray();
        var plain = new GradientSum(architecture.ParameterCount);
        var timed = new GradientSum(architecture.ParameterCount);
        new BatchEngine(architecture, 4, threads).Gradient(θ, data, batch, plain);
        var phases = new PhaseTimes(architecture.LayerCount);
        var engine = new BatchEngine(architecture, 4, threads) { Phases = phases };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        engine.Gradient(θ, data, batch, timed);
        var wall = clock.Elapsed;

        Assert.Equal(plain.Values, timed.Values);
        Assert.Equal(plain.LossSum, timed.LossSum);
        var L = architecture.LayerCount;
        Assert.True(phases[EnginePhase.PackWeights, 0] > TimeSpan.Zero);
        Assert.True(phases[EnginePhase.OutputRows, 0] > TimeSpan.Zero);
        for (var l = 0; l < L; l++)
        {
            Assert.True(phases[EnginePhase.Forward, l] > TimeSpan.Zero, $"forward, layer {l}");
            Assert.True(phases[EnginePhase.DeltaTilesAndBias, l] > TimeSpan.Zero, $"Δᵀ tiles and bias, layer {l}");
            Assert.True(phases[EnginePhase.WeightGradient, l] > TimeSpan.Zero, $"weight gradient, layer {l}");
            // No error is propagated below the first layer.
            Assert.Equal(l == 0, phases[EnginePhase.BackwardErrors, l] == TimeSpan.Zero);
        }
        var total = Enum.GetValues<EnginePhase>().Aggregate(TimeSpan.Zero, (sum, phase) => sum + phases.Total(phase));
        Assert.InRange(total, TimeSpan.Zero, wall);

        phases.Clear();
        Assert.Equal(TimeSpan.Zero, phases.Total(EnginePhase.Forward));
    }

    [Fact]
    public void Phases_ForAnotherLayerCount_AreRefused()
    {
        var (architecture, _) = TestNets.Network([11, 23, 7], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 3);
        var engine = new BatchEngine(architecture, 4, 1);
        var refused = Assert.Throws<ArgumentException>(() => engine.Phases = new PhaseTimes(3));
        Assert.Contains("3 layers", refused.Message);
    }

    [Fact]
    public void Predict_OneRow_EqualsTheReferenceOutputs()
    {
        var (architecture, θ) = TestNets.Network([9, 17, 4], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy, seed: 6);
        var data = TestNets.Data(3, 9, 4, seed: 7);
        var engine = new BatchEngine(architecture, 8);
        for (var i = 0; i < data.Count; i++)
        {
            var a = engine.Predict(θ, data.Row(i));
            var expected = ReferenceNetwork.Forward(architecture, TestNets.ToDouble(θ), TestNets.ToDouble(data.Row(i))).Outputs[^1];
            for (var j = 0; j < a.Length; j++) Assert.True(Math.Abs(expected[j] - a[j]) <= FloatTolerance, $"output {j}: {a[j]} vs {expected[j]}");
        }
    }

    [Fact]
    public void Gradient_IndexOutOfRange_Throws()
    {
        var (architecture, θ) = TestNets.Network([4, 3, 2], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 1);
        var data = TestNets.Data(5, 4, 2, seed: 1);
        var sum = new GradientSum(architecture.ParameterCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchEngine(architecture, 2).Gradient(θ, data, OutOfRange, sum));
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

    /// <summary>A 5-7-6 network (4 outputs for softmax, else 3) and 23 samples for it, for the reference comparisons.</summary>
    private static (Architecture Architecture, float[] Parameters, DataSet Data) SmallNetwork(Activation hidden, Activation output, Cost cost) =>
        TestNets.NetworkAndData([5, 7, 6, output == Activation.Softmax ? 4 : 3], hidden, output, cost, seed: 21, samples: 23, dataSeed: 5);

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
