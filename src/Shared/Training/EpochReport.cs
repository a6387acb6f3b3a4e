namespace Backprop.Training;

/// <summary>One line of the training log.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="TrainLoss">Mean cost over the epoch's training samples, each at the weights its step started from.</param>
/// <param name="TrainAccuracy">Fraction of them predicted right, likewise.</param>
/// <param name="TestLoss">Mean cost over the test set at the epoch's final weights.</param>
/// <param name="TestAccuracy">Fraction of the test set predicted right.</param>
/// <param name="Elapsed">Wall time from the epoch's first step to its last update.</param>
/// <param name="Samples">Training samples in the epoch.</param>
/// <param name="Timing">Where the steps' time went, when the coordinator measured it.</param>
/// <param name="SinceStart">Wall time from the run's first step to the end of this epoch's evaluation
/// (evaluations and pauses included): the clock of a time-to-accuracy measurement.</param>
public sealed record EpochReport(
    int Epoch,
    int Epochs,
    double TrainLoss,
    double TrainAccuracy,
    double TestLoss,
    double TestAccuracy,
    TimeSpan Elapsed,
    int Samples,
    StepTiming? Timing = null,
    TimeSpan SinceStart = default)
{
    /// <summary>Training samples per second in this epoch.</summary>
    public double SamplesPerSecond => Samples / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// Totals over an epoch's steps: wall time per step, the slowest worker's compute time per step,
/// the coordinator's own time (reduction and update), and the serialization time and bytes
/// measured in the coordinator's process.
/// </summary>
public sealed record StepTiming(int Steps, double StepSeconds, double ComputeSeconds, double CoordinatorSeconds, double WireSeconds, long WireBytes)
{
    /// <summary>Mean milliseconds per step.</summary>
    public double StepMilliseconds => 1000 * StepSeconds / Math.Max(Steps, 1);
    /// <summary>Mean milliseconds of the slowest worker's compute per step.</summary>
    public double ComputeMilliseconds => 1000 * ComputeSeconds / Math.Max(Steps, 1);
    /// <summary>Mean milliseconds of reduction and update per step.</summary>
    public double CoordinatorMilliseconds => 1000 * CoordinatorSeconds / Math.Max(Steps, 1);
    /// <summary>Mean milliseconds of serialization per step (in the coordinator's process).</summary>
    public double WireMilliseconds => 1000 * WireSeconds / Math.Max(Steps, 1);
    /// <summary>The rest of a step: transport, scheduling, the workers' own serialization.</summary>
    public double WaitingMilliseconds => Math.Max(0, StepMilliseconds - ComputeMilliseconds - CoordinatorMilliseconds - WireMilliseconds);
    /// <summary>Mean bytes serialized and deserialized per step (in the coordinator's process).</summary>
    public double BytesPerStep => (double)WireBytes / Math.Max(Steps, 1);
}
