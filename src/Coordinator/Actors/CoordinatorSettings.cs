namespace Backprop.Coordinator.Actors;

/// <summary>How patient the coordinator is.</summary>
/// <param name="MinWorkers">Workers needed before the first step.</param>
/// <param name="StepTimeout">How long a node may take before it is given to another worker as well.</param>
/// <param name="WorkerWaitTimeout">How long to wait with no worker at all before giving up.</param>
/// <param name="WaitingReportInterval">How often to say that it is still waiting for workers.</param>
/// <param name="MaxAttempts">Assignments of one node (after deadlines, rejections, departures) before the run fails.</param>
/// <param name="DiscoverClusterWorkers">Find workers among the cluster's members with role "worker" (else they register).</param>
/// <param name="TargetAccuracy">Finish the run at the end of the first epoch whose test accuracy reaches this fraction (null: train every epoch).</param>
public sealed record CoordinatorSettings(
    int MinWorkers = 1,
    TimeSpan? StepTimeout = null,
    TimeSpan? WorkerWaitTimeout = null,
    TimeSpan? WaitingReportInterval = null,
    int MaxAttempts = 4,
    bool DiscoverClusterWorkers = false,
    double? TargetAccuracy = null)
{
    /// <summary>The step deadline (default 30 s).</summary>
    public TimeSpan StepDeadline => StepTimeout ?? TimeSpan.FromSeconds(30);
    /// <summary>The no-worker limit (default 60 s).</summary>
    public TimeSpan WorkerWait => WorkerWaitTimeout ?? TimeSpan.FromSeconds(60);
    /// <summary>The waiting report interval (default 5 s).</summary>
    public TimeSpan WaitingReport => WaitingReportInterval ?? TimeSpan.FromSeconds(5);
    /// <summary>How often a worker node set aside after a dropped connection is asked whether it is there (1 s).</summary>
    public TimeSpan SuspendedProbe { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>How workers in other processes add up a step's sums (workers in the coordinator's process always use the star).</summary>
    public Backprop.Protocol.ReduceMode Reduce { get; init; } = Backprop.Protocol.ReduceMode.AllReduce;
    /// <summary>All-reduce: every this many steps the workers' replicas are compared by hash (0: never).</summary>
    public int StateCheckEvery { get; init; } = 100;
    /// <summary>
    /// The share of chunk-tree nodes also given to a second worker, whose result must be the same bits
    /// (a third decides a disagreement, and the worker found wrong is set aside); 0: none.
    /// </summary>
    public double VerifyFraction { get; init; } = DefaultVerifyFraction;
    /// <summary>The default <see cref="VerifyFraction"/>.</summary>
    public const double DefaultVerifyFraction = 0.02;
    /// <summary>Missed deadlines or rejected results in a row after which a worker is set aside for the rest of the run.</summary>
    public int MaxStrikes { get; init; } = 3;
    /// <summary>How long a pause may last: after it the coordinator resumes by itself, with a warning (default 10 minutes).</summary>
    public TimeSpan PauseLimit { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Where the coordinator's tensor channel listens; null when every worker is in its process (tensors travel as messages).</summary>
    public Backprop.Channel.ChannelSettings? Channel { get; init; }
}
