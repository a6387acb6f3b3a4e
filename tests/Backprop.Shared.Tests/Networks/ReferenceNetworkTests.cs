using Backprop.Engine;
using Backprop.Networks;

namespace Backprop.Shared.Tests.Networks;

public class ReferenceNetworkTests
{
    [Theory]
    [MemberData(nameof(TestNets.AllCombinations), MemberType = typeof(TestNets))]
    public void SampleGradient_AnyActivationAndCost_MatchesCentralFiniteDifferences(Activation hidden, Activation output, Cost cost)
    {
        var outputs = output == Activation.Softmax ? 3 : 2;
        var (architecture, floats, data) = TestNets.NetworkAndData([3, 4, 3, outputs], hidden, output, cost, seed: 7, samples: 5, dataSeed: 11);
        var θ = TestNets.ToDouble(floats);
        var (gradient, _) = TestNets.ReferenceSum(architecture, θ, data);

        // C(θ) = Σ_x C(x); ∂C/∂θ_p ≈ (C(θ + h e_p) − C(θ − h e_p)) / 2h.
        const double h = 1e-6;
        double Total(double[] parameters)
        {
            double c = 0;
            var y = new double[outputs];
            for (var i = 0; i < data.Count; i++)
            {
                Targets.Encode(data.Labels[i], y);
                c += ReferenceNetwork.SampleCost(architecture, parameters, TestNets.ToDouble(data.Row(i)), y);
            }
            return c;
        }
        for (var p = 0; p < θ.Length; p++)
        {
            var saved = θ[p];
            θ[p] = saved + h;
            var plus = Total(θ);
            θ[p] = saved - h;
            var minus = Total(θ);
            θ[p] = saved;
            var numeric = (plus - minus) / (2 * h);
            // Tolerance: 1e-6 relative to max(1, |∂C/∂θ|); the central difference is accurate to ~1e-9 here.
            Assert.True(Math.Abs(numeric - gradient[p]) <= 1e-6 * Math.Max(1, Math.Abs(gradient[p])),
                $"parameter {p}: finite difference {numeric}, backprop {gradient[p]}");
        }
    }

    [Fact]
    public void SampleGradient_BinaryLogisticOutput_MatchesFiniteDifferences()
    {
        var (architecture, floats) = TestNets.Network([2, 3, 1], Activation.Tanh, Activation.Logistic, Cost.CrossEntropy, seed: 3);
        var θ = TestNets.ToDouble(floats);
        double[] x = [0.3, -0.7], y = [1];
        var gradient = new double[θ.Length];
        ReferenceNetwork.SampleGradient(architecture, θ, x, y, gradient);
        for (var p = 0; p < θ.Length; p++)
        {
            var saved = θ[p];
            θ[p] = saved + 1e-6;
            var plus = ReferenceNetwork.SampleCost(architecture, θ, x, y);
            θ[p] = saved - 1e-6;
            var minus = ReferenceNetwork.SampleCost(architecture, θ, x, y);
            θ[p] = saved;
            Assert.Equal((plus - minus) / 2e-6, gradient[p], 1e-7);
        }
    }

    [Fact]
    public void Forward_SeedExample_FollowsTheArticleFormulas()
    {
        // One logistic neuron with w = (0.5, −1), b = 0.25 on x = (2, 1): net = 0.25, o = σ(0.25).
        var architecture = new Architecture([2, 1], Activation.Logistic, Activation.Logistic, Cost.Quadratic);
        double[] θ = [0.5, -1, 0.25];
        var (nets, outputs) = ReferenceNetwork.Forward(architecture, θ, [2, 1]);
        Assert.Equal(0.25, nets[0][0], 15);
        Assert.Equal(1 / (1 + Math.Exp(-0.25)), outputs[1][0], 15);

        // δ = (o − y) σ'(net); ∂C/∂w_i = o_i δ; ∂C/∂b = δ.
        var gradient = new double[3];
        ReferenceNetwork.SampleGradient(architecture, θ, [2, 1], [1], gradient);
        var o = outputs[1][0];
        var δ = (o - 1) * o * (1 - o);
        Assert.Equal(2 * δ, gradient[0], 15);
        Assert.Equal(1 * δ, gradient[1], 15);
        Assert.Equal(δ, gradient[2], 15);
    }
}
