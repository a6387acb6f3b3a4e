using System.Diagnostics;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;
using MathNet.Numerics.Statistics;

namespace Backprop.Benchmarks.Steps;

/// <summary>The sides timed beside ours in every repetition, by their index in <see cref="Measurement.Others"/>.</summary>
internal static class Side
{
    /// <summary>PyTorch's step (bench/pytorch_bench.py).</summary>
    public const int PyTorch = 0;
    /// <summary>The step's products alone in OpenBLAS (<see cref="GemmFloor"/>).</summary>
    public const int Gemms = 1;
    /// <summary>OpenBLAS sgemm 1024³, the machine's peak (<see cref="OpenBlasSides.SgemmPeak"/>).</summary>
    public const int Peak = 2;
}

/// <summary>
/// The rates of each repetition, in samples/s: ours, and each other side's (null where it was not
/// timed; a side that failed has NaN). Ratios are taken repetition by repetition.
/// </summary>
internal sealed record Measurement(double[] Ours, double[]?[] Others)
{
    /// <summary>The median of our repetitions.</summary>
    public double OursMedian => Ours.Median();

    /// <summary>The median of a side's repetitions, NaN when it was not timed or failed.</summary>
    public double MedianOf(int side) => Usable(Others[side]) is { } rates ? rates.Median() : double.NaN;

    /// <summary>Ours over a side, each repetition (empty when the side was not timed or failed).</summary>
    public double[] OursOver(int side) => Ratios(Ours, Others[side]);

    /// <summary>One side over another, each repetition (empty when either was not timed or failed).</summary>
    public double[] Over(int top, int bottom) => Ratios(Others[top], Others[bottom]);

    private static double[]? Usable(double[]? rates) => rates is null || rates.Any(double.IsNaN) ? null : rates;

    private static double[] Ratios(double[]? top, double[]? bottom) =>
        Usable(top) is { } t && Usable(bottom) is { } b ? [.. t.Zip(b, (x, y) => x / y)] : [];

    /// <summary>
    /// Samples/s of engine.Gradient + SGD step over batches of a shuffled epoch order, in
    /// <paramref name="repetitions"/> repetitions. Each repetition of ours is timed back to back with one
    /// of every other side (steps → that side's samples/s over that many steps; indexed as in
    /// <see cref="Side"/>; null: not timed), in an order that rotates from repetition to repetition.
    /// </summary>
    public static Measurement Take(
        Architecture architecture, DataSet train, int batch, int chunk, int threads, int repetitions, double seconds,
        params Func<int, double>?[] others)
    {
        var loop = new StepLoop(architecture, train, batch, chunk, threads);
        double Time(int steps)
        {
            var clock = Stopwatch.StartNew();
            for (var s = 0; s < steps; s++) loop.Step();
            return steps * batch / clock.Elapsed.TotalSeconds;
        }
        int StepsFor(double rate) => Math.Max(5, (int)(seconds * rate / batch));

        // The sides of a repetition: ours first in the list; each is sized from a short probe, so every
        // side takes about the same time, then warmed up.
        var sides = new List<(Func<int, double> Rate, int Slot)> { (Time, -1) };
        for (var i = 0; i < others.Length; i++)
        {
            if (others[i] is { } side) sides.Add((side, i));
        }
        var steps = new int[sides.Count];
        for (var i = 0; i < sides.Count; i++)
        {
            sides[i].Rate(3);
            steps[i] = StepsFor(sides[i].Rate(5));
            sides[i].Rate(Math.Max(5, steps[i] / 5));
        }
        var rates = new double[sides.Count][];
        for (var i = 0; i < sides.Count; i++) rates[i] = new double[repetitions];
        for (var r = 0; r < repetitions; r++)
        {
            // Rotate who goes first, so a machine that drifts in one direction favours no side.
            for (var j = 0; j < sides.Count; j++)
            {
                var i = (r + j) % sides.Count;
                rates[i][r] = sides[i].Rate(steps[i]);
            }
        }
        var byIndex = new double[]?[others.Length];
        for (var i = 1; i < sides.Count; i++) byIndex[sides[i].Slot] = rates[i];
        return new Measurement(rates[0], byIndex);
    }
}

/// <summary>
/// Training steps as the bench times them: engine.Gradient + SGD update over batches of a shuffled
/// epoch order (a new order each epoch), with the time spent in the update kept apart.
/// </summary>
internal sealed class StepLoop(Architecture architecture, DataSet train, int batch, int chunk, int threads)
{
    private readonly float[] _θ = Initialization.Create(architecture, seed: 1);
    private readonly Optimizer _optimizer = Optimizer.Create(architecture, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 0.01f));
    private readonly GradientSum _sum = new(architecture.ParameterCount);
    private int[] _order = Shuffling.Permutation(train.Count, 1, 0);
    private int _epoch, _position;

    public BatchEngine Engine { get; } = new(architecture, chunk, threads);

    /// <summary>Time spent in the SGD update so far.</summary>
    public TimeSpan Update { get; set; }

    public void Step()
    {
        if (_position + batch > train.Count)
        {
            _order = Shuffling.Permutation(train.Count, 1, ++_epoch);
            _position = 0;
        }
        Engine.Gradient(_θ, train, _order.AsSpan(_position, batch), _sum);
        var start = Stopwatch.GetTimestamp();
        _optimizer.Step(_θ, _sum.Values, _sum.SampleCount);
        Update += Stopwatch.GetElapsedTime(start);
        _position += batch;
    }
}
