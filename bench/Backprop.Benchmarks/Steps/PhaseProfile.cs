using System.Diagnostics;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;

namespace Backprop.Benchmarks.Steps;

/// <summary>
/// Where the time of a 1-thread step goes: the engine's phases (<paramref name="Ours"/>), the SGD
/// update and the whole step, summed over <paramref name="Steps"/> steps; beside each product, the same
/// product alone in OpenBLAS (<paramref name="OpenBlas"/>, when installed), timed in steps that
/// alternate with ours.
/// </summary>
internal sealed record PhaseProfile(Architecture Architecture, int Batch, int Chunk, int Steps, PhaseTimes Ours, PhaseTimes? OpenBlas, TimeSpan Update, TimeSpan Total)
{
    /// <summary>Warms up for <paramref name="seconds"/>, then measures for twice that (at least 5 steps).</summary>
    public static PhaseProfile Take(Architecture architecture, DataSet train, int batch, int chunk, double seconds)
    {
        var L = architecture.LayerCount;
        var phases = new PhaseTimes(L);
        var loop = new StepLoop(architecture, train, batch, chunk, threads: 1);
        loop.Engine.Phases = phases;
        var floor = Benchmarks.OpenBlas.IsAvailable ? new GemmFloor(architecture, batch) : null;
        var blas = floor is null ? null : new PhaseTimes(L);
        // Warm up for a while (the engine's code reaches its optimized tier), then measure afresh.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < seconds)
        {
            loop.Step();
            floor?.Step(null);
        }
        phases.Clear();
        loop.Update = TimeSpan.Zero;
        var steps = 0;
        var ours = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        for (; clock.Elapsed.TotalSeconds < 2 * seconds || steps < 5; steps++)
        {
            var start = Stopwatch.GetTimestamp();
            loop.Step();
            ours += Stopwatch.GetElapsedTime(start);
            floor?.Step(blas);
        }
        return new PhaseProfile(architecture, batch, chunk, steps, phases, blas, loop.Update, ours);
    }

    /// <summary>Milliseconds per step of a duration summed over the steps.</summary>
    public double PerStep(TimeSpan total) => total.TotalMilliseconds / Steps;
}
