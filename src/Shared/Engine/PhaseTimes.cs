using System.Diagnostics;

namespace Backprop.Engine;

/// <summary>The phases of a training step in <see cref="BatchEngine"/>, in the order they run.</summary>
public enum EnginePhase
{
    /// <summary>W_lᵀ and W_l packed into panels (once per <see cref="BatchEngine.Gradient"/> call).</summary>
    PackWeights,
    /// <summary>o_{l+1} = f(o_l · W_lᵀ + b_l).</summary>
    Forward,
    /// <summary>The output layer row by row: a, C(x), the prediction, Δ_L.</summary>
    OutputRows,
    /// <summary>Δ_lᵀ packed into tiles, and ∂C/∂b_l.</summary>
    DeltaTilesAndBias,
    /// <summary>∂C/∂W_l = Δ_lᵀ · o_l along the chunk tree.</summary>
    WeightGradient,
    /// <summary>Δ_{l−1} = (Δ_l · W_l) ⊙ f'(o_l).</summary>
    BackwardErrors,
}

/// <summary>
/// Where an engine's time goes, phase by phase and layer by layer: set <see cref="BatchEngine.Phases"/>
/// and every call adds to it. What is timed is the calling thread's wall time (team member 0), barrier
/// waits included, so on one thread the phases add up to the whole call but for the bookkeeping
/// between blocks. Off (null) by default; on, it costs one timestamp per phase and allocates nothing.
/// </summary>
public sealed class PhaseTimes
{
    private static readonly int PhaseCount = Enum.GetValues<EnginePhase>().Length;
    private readonly long[] _ticks;

    /// <summary>Times for a network of <paramref name="layerCount"/> layers.</summary>
    public PhaseTimes(int layerCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layerCount, 1);
        LayerCount = layerCount;
        _ticks = new long[PhaseCount * layerCount];
    }

    /// <summary>The layers timed (phases that are not per layer count under layer 0).</summary>
    public int LayerCount { get; }

    /// <summary>The time spent in <paramref name="phase"/> of layer <paramref name="layer"/> so far.</summary>
    public TimeSpan this[EnginePhase phase, int layer] => Stopwatch.GetElapsedTime(0, _ticks[Index(phase, layer)]);

    /// <summary>The time spent in <paramref name="phase"/>, all layers.</summary>
    public TimeSpan Total(EnginePhase phase)
    {
        long sum = 0;
        for (var l = 0; l < LayerCount; l++) sum += _ticks[Index(phase, l)];
        return Stopwatch.GetElapsedTime(0, sum);
    }

    /// <summary>Forgets what was measured.</summary>
    public void Clear() => Array.Clear(_ticks);

    /// <summary>Adds the time since <paramref name="since"/> (a <see cref="Stopwatch.GetTimestamp"/>) to a phase; returns now.</summary>
    public long Add(EnginePhase phase, int layer, long since)
    {
        var now = Stopwatch.GetTimestamp();
        _ticks[Index(phase, layer)] += now - since;
        return now;
    }

    private int Index(EnginePhase phase, int layer) => (int)phase * LayerCount + layer;
}
