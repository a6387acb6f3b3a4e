using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Training;

/// <summary>Step-time totals of the current epoch (train --stats); serialization comes from the process's wire metrics.</summary>
internal sealed class StepTimingTotals : IDisposable
{
    private readonly WireStatistics _wire = new();
    private int _steps;
    private double _stepSeconds, _computeSeconds, _coordinatorSeconds, _wireSeconds;
    private long _wireBytes;

    /// <summary>Adds one step: its wall time, its slowest worker's compute time, and the coordinator's own time.</summary>
    public void Add(double step, double compute, double coordinator)
    {
        _steps++;
        _stepSeconds += step;
        _computeSeconds += compute;
        _coordinatorSeconds += coordinator;
    }

    /// <summary>The totals since the last call, which starts the next epoch's.</summary>
    public StepTiming Take()
    {
        double wireSeconds = _wire.Seconds;
        var wireBytes = _wire.Bytes;
        var timing = new StepTiming(_steps, _stepSeconds, _computeSeconds, _coordinatorSeconds, wireSeconds - _wireSeconds, wireBytes - _wireBytes);
        (_steps, _stepSeconds, _computeSeconds, _coordinatorSeconds, _wireSeconds, _wireBytes) = (0, 0, 0, 0, wireSeconds, wireBytes);
        return timing;
    }

    public void Dispose() => _wire.Dispose();
}
