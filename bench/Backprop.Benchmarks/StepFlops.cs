using Backprop.Networks;

namespace Backprop.Benchmarks;

/// <summary>The floating-point operations of a training step, the one count every benchmark uses.</summary>
internal static class StepFlops
{
    /// <summary>
    /// Of one sample: 2·n_in·n_out for the forward product and again for the weight gradient of every
    /// layer, and again for the backward error of every layer but the first (none goes below the inputs).
    /// </summary>
    public static double PerSample(Architecture architecture)
    {
        double flops = 0;
        for (var l = 0; l < architecture.LayerCount; l++) flops += (l > 0 ? 6.0 : 4.0) * architecture.WeightCount(l);
        return flops;
    }
}
