using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Shared.Tests.Training;

public class OptimizerTests
{
    // One layer 2 → 1: parameters w0, w1 (weights), b (bias).
    private static readonly Architecture Tiny = new([2, 1], Activation.Logistic, Activation.Logistic, Cost.Quadratic);

    [Fact]
    public void Sgd_Step_IsMinusLearningRateTimesAverageGradient()
    {
        float[] θ = [1, 2, 3];
        var sgd = Optimizer.Create(Tiny, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 0.5f));
        sgd.Step(θ, [4, -8, 2], sampleCount: 4); // average g = (1, −2, 0.5)
        Assert.Equal([0.5f, 3f, 2.75f], θ);
    }

    [Fact]
    public void Sgd_WeightDecay_AppliesToWeightsNotBiases()
    {
        float[] θ = [1, 2, 3];
        var sgd = Optimizer.Create(Tiny, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 0.5f, WeightDecay: 0.1f));
        sgd.Step(θ, [0, 0, 0], sampleCount: 1);
        Assert.Equal([0.95f, 1.9f, 3f], θ);
    }

    [Fact]
    public void Momentum_TwoSteps_AccumulatesVelocity()
    {
        float[] θ = [0, 0, 0];
        var momentum = Optimizer.Create(Tiny, new OptimizerSettings(OptimizerKind.Momentum, LearningRate: 1f, Momentum: 0.5f));
        momentum.Step(θ, [1, 1, 1], 1); // v = 1, θ = −1
        momentum.Step(θ, [1, 1, 1], 1); // v = 1.5, θ = −2.5
        Assert.Equal([-2.5f, -2.5f, -2.5f], θ);
    }

    [Fact]
    public void Adam_FirstStep_MovesEachParameterByTheLearningRate()
    {
        // With bias correction, m̂ = g and v̂ = g², so the first step is η·g/|g| (up to ε).
        float[] θ = [0, 0, 0];
        var adam = Optimizer.Create(Tiny, new OptimizerSettings(OptimizerKind.Adam, LearningRate: 0.01f));
        adam.Step(θ, [3, -0.2f, 50], 1);
        Assert.Equal(-0.01f, θ[0], 6);
        Assert.Equal(0.01f, θ[1], 6);
        Assert.Equal(-0.01f, θ[2], 6);
        Assert.Equal(1, adam.StepCount);
    }

    /// <summary>
    /// The optimizers (vectorized where vectors fit) against the formulas written out one parameter at a
    /// time, bit for bit, over several steps with weight decay, on layers whose sizes are not multiples
    /// of any vector width.
    /// </summary>
    [Theory]
    [InlineData(OptimizerKind.Sgd)]
    [InlineData(OptimizerKind.Momentum)]
    [InlineData(OptimizerKind.Adam)]
    public void Step_MatchesTheScalarFormulasBitForBit(OptimizerKind kind)
    {
        var architecture = new Architecture([37, 19, 5], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy);
        var settings = new OptimizerSettings(kind, LearningRate: 0.03f, Momentum: 0.8f, WeightDecay: 0.01f);
        var random = new Random(3);
        var θ = new float[architecture.ParameterCount];
        for (var i = 0; i < θ.Length; i++) θ[i] = (float)(random.NextDouble() - 0.5);
        var expected = (float[])θ.Clone();
        var optimizer = Optimizer.Create(architecture, settings);
        var m = new float[θ.Length];
        var v = new float[θ.Length];
        for (var t = 1; t <= 5; t++)
        {
            var sum = new float[θ.Length];
            for (var i = 0; i < sum.Length; i++) sum[i] = (float)(random.NextDouble() * 8 - 4);
            optimizer.Step(θ, sum, sampleCount: 3);

            var inverseCount = 1f / 3;
            var mCorrection = (float)(1 / (1 - Math.Pow(settings.Beta1, t)));
            var vCorrection = (float)(1 / (1 - Math.Pow(settings.Beta2, t)));
            for (var l = 0; l < architecture.LayerCount; l++)
            {
                foreach (var (start, count, λ) in new[] { (architecture.WeightOffset(l), architecture.WeightCount(l), settings.WeightDecay), (architecture.BiasOffset(l), architecture.OutputsOf(l), 0f) })
                {
                    for (var i = start; i < start + count; i++)
                    {
                        var g = sum[i] * inverseCount + λ * expected[i];
                        switch (kind)
                        {
                            case OptimizerKind.Sgd:
                                expected[i] -= settings.LearningRate * g;
                                break;
                            case OptimizerKind.Momentum:
                                m[i] = settings.Momentum * m[i] + g;
                                expected[i] -= settings.LearningRate * m[i];
                                break;
                            default:
                                m[i] = settings.Beta1 * m[i] + (1 - settings.Beta1) * g;
                                v[i] = settings.Beta2 * v[i] + (1 - settings.Beta2) * g * g;
                                expected[i] -= settings.LearningRate * (m[i] * mCorrection) / (MathF.Sqrt(v[i] * vCorrection) + settings.Epsilon);
                                break;
                        }
                    }
                }
            }
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), θ.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void Warmup_RaisesLearningRateLinearly()
    {
        var sgd = Optimizer.Create(Tiny, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 1f, WarmupSteps: 4));
        var rates = new List<float>();
        float[] θ = [0, 0, 0];
        for (var t = 0; t < 6; t++)
        {
            rates.Add(sgd.CurrentLearningRate);
            sgd.Step(θ, [0, 0, 0], 1);
        }
        Assert.Equal([0.25f, 0.5f, 0.75f, 1f, 1f, 1f], rates);
    }

    [Fact]
    public void Restore_StateAndStep_ContinuesIdentically()
    {
        var settings = new OptimizerSettings(OptimizerKind.Adam, LearningRate: 0.1f);
        float[] a = [1, 2, 3], b;
        var first = Optimizer.Create(Tiny, settings);
        first.Step(a, [1, 2, 3], 1);
        b = (float[])a.Clone();
        var second = Optimizer.Create(Tiny, settings);
        second.Restore(first.StepCount, first.State.Select(s => (float[])s.Clone()).ToList());
        first.Step(a, [-1, 0.5f, 2], 1);
        second.Step(b, [-1, 0.5f, 2], 1);
        Assert.Equal(a, b);
    }

    [Theory]
    [InlineData(0f, 0.9f)]
    [InlineData(-1f, 0.9f)]
    [InlineData(float.NaN, 0.9f)]
    [InlineData(0.1f, 1f)]
    public void Settings_OutOfRange_AreNamed(float learningRate, float momentum)
    {
        var problem = new OptimizerSettings(OptimizerKind.Momentum, learningRate, momentum).Validate();
        Assert.NotNull(problem);
    }
}
