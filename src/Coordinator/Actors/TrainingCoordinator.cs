using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Remote;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

/// <summary>How patient the coordinator is.</summary>
/// <param name="MinWorkers">Workers needed before the first step.</param>
/// <param name="StepTimeout">How long a node may take before it is given to another worker as well.</param>
/// <param name="WorkerWaitTimeout">How long to wait with no worker at all before giving up.</param>
/// <param name="WaitingReportInterval">How often to say that it is still waiting for workers.</param>
/// <param name="MaxAttempts">Assignments of one node (after deadlines, rejections, departures) before the run fails.</param>
/// <param name="DiscoverClusterWorkers">Find workers among the cluster's members with role "worker" (else they register).</param>
/// <param name="HalfPrecisionGradients">Ask workers for gradient sums rounded to half precision (half the bytes on the wire).</param>
/// <param name="TargetAccuracy">Finish the run at the end of the first epoch whose test accuracy reaches this fraction (null: train every epoch).</param>
public sealed record CoordinatorSettings(
    int MinWorkers = 1,
    TimeSpan? StepTimeout = null,
    TimeSpan? WorkerWaitTimeout = null,
    TimeSpan? WaitingReportInterval = null,
    int MaxAttempts = 4,
    bool DiscoverClusterWorkers = false,
    bool HalfPrecisionGradients = false,
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
}

/// <summary>
/// The coordinator actor. It owns the training run (weights, optimizer state, epoch order, step);
/// for every step it cuts the batch into chunk-tree nodes, gives each worker a contiguous range of
/// them, collects the node sums, adds them in the tree's fixed order, lets the run apply the
/// averaged gradient, and broadcasts the new weights.
/// </summary>
/// <remarks>
/// States: waiting for workers → training ⇄ paused → finished. Every wait has a deadline: a step
/// whose node is late is given to another worker too (the first valid result wins), and a run
/// with no workers fails after <see cref="CoordinatorSettings.WorkerWait"/>.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "An actor releases what it holds in PostStop.")]
public sealed class TrainingCoordinator : ReceiveActor, IWithTimers
{
    private readonly TrainingRun _run;
    private readonly CoordinatorSettings _settings;
    private readonly IActorRef _listener;
    private readonly SetupRun _setup;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, WorkerState> _workers = [];
    private readonly Dictionary<Address, IActorRef> _workerNodes = [];   // cluster mode: node → its worker actor
    private readonly List<IActorRef> _ready = [];          // in the order they became ready
    private readonly Stack<GradientSum> _pool = new();
    private WeightsUpdate _weights;
    private StepState? _step;
    private EpochReport? _lastReport;
    private bool _pauseRequested;
    private int _deadlineGeneration;
    private readonly TimingTotals _timing = new();
    private Phase _phase;

    private enum Phase { Waiting, Training, Paused, Finished }

    /// <summary>A coordinator for <paramref name="run"/> that reports to <paramref name="listener"/>.</summary>
    public TrainingCoordinator(TrainingRun run, CoordinatorSettings settings, IActorRef listener)
    {
        _run = run;
        _settings = settings;
        _listener = listener;
        var scaling = run.Scaling;
        var architecture = run.Settings.Architecture;
        _setup = new SetupRun(
            Guid.NewGuid().ToString("N"), [.. architecture.Sizes], architecture.Hidden, architecture.Output, architecture.Cost,
            run.Settings.ChunkSize, run.Settings.Seed, run.Train.Count, run.Train.ContentHash,
            scaling.Kind, FloatTensor.CopyOf(scaling.Shift), FloatTensor.CopyOf(scaling.Scale), settings.HalfPrecisionGradients);
        _weights = new WeightsUpdate(_setup.RunId, run.Version, FloatTensor.CopyOf(run.Parameters));
        WaitingForWorkers();
    }

    /// <summary>Props for a coordinator.</summary>
    public static Props Props(TrainingRun run, CoordinatorSettings settings, IActorRef listener) =>
        Akka.Actor.Props.Create(() => new TrainingCoordinator(run, settings, listener));

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The run's id, as sent to workers.</summary>
    public string RunId => _setup.RunId;

    /// <summary>The role of worker nodes and the name of their worker actor (/user/worker).</summary>
    public const string WorkerRole = "worker", WorkerActorName = "worker";

    /// <inheritdoc/>
    protected override void PreStart()
    {
        if (_settings.DiscoverClusterWorkers)
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
            Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        }
    }

    /// <inheritdoc/>
    protected override void PostStop()
    {
        if (_settings.DiscoverClusterWorkers)
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
            Context.System.EventStream.Unsubscribe(Self);
        }
        _timing.Dispose();
    }

    // ---- States ---------------------------------------------------------------------------

    private void WaitingForWorkers()
    {
        _phase = Phase.Waiting;
        Timers.Cancel(StepDeadline.Key);
        _log.Info("waiting for workers ({0} of {1} ready)", _ready.Count, WorkersNeeded);
        Timers.StartSingleTimer(WaitTimeout.Key, WaitTimeout.Instance, _settings.WorkerWait);
        Timers.StartPeriodicTimer(WaitReport.Key, WaitReport.Instance, _settings.WaitingReport);
        Become(() =>
        {
            Membership();
            Work();
            Receive<WaitReport>(_ => _log.Warning("still waiting for workers: {0} of {1} ready", _ready.Count, WorkersNeeded));
            Receive<WaitTimeout>(_ => Fail($"no workers: {_ready.Count} of {WorkersNeeded} needed were ready after {_settings.WorkerWait.TotalSeconds:0.#} s"));
            Receive<PauseTraining>(_ => _pauseRequested = true);
            Receive<ResumeTraining>(_ => _pauseRequested = false);
        });
    }

    /// <summary>Before the first step, the configured minimum; once training has begun, one is enough.</summary>
    private int WorkersNeeded => _step is null && _run.Version == 0 ? _settings.MinWorkers : 1;

    private void Training()
    {
        _phase = Phase.Training;
        Timers.Cancel(WaitTimeout.Key);
        Timers.Cancel(WaitReport.Key);
        Become(() =>
        {
            Membership();
            Work();
            Receive<StepDeadline>(HandleDeadline);
            Receive<PauseTraining>(_ => _pauseRequested = true);
            Receive<ResumeTraining>(_ => _pauseRequested = false);
        });
    }

    private void Paused()
    {
        _phase = Phase.Paused;
        _pauseRequested = false;
        _log.Info("paused after {0} updates", _run.Version);
        _listener.Tell(new TrainingPaused(_run.Version));
        Become(() =>
        {
            Membership();
            Work();
            Receive<PauseTraining>(_ => { });
            Receive<ResumeTraining>(_ =>
            {
                _log.Info("resuming");
                StartStep();
            });
        });
    }

    private void Finished()
    {
        _phase = Phase.Finished;
        Timers.CancelAll();
        foreach (var worker in _workers.Keys) worker.Tell(new RunFinished(RunId));
        Become(() =>
        {
            Receive<RegisterWorker>(_ => Sender.Tell(new RunFinished(RunId)));
            Receive<ActorIdentity>(identity => identity.Subject?.Tell(new RunFinished(RunId)));
            Receive<ClusterEvent.MemberUp>(up => IdentifyWorker(up.Member));
            ReceiveAny(message => _log.Debug("run finished; ignoring {0}", message));
        });
    }

    // ---- Workers joining and leaving -------------------------------------------------------

    private void Membership()
    {
        Receive<RegisterWorker>(_ => AddWorker(Sender));
        Receive<SetupAccepted>(HandleSetupAccepted);
        Receive<SetupRefused>(HandleSetupRefused);
        Receive<Terminated>(t => RemoveWorker(t.ActorRef, "stopped"));

        // Cluster mode: a worker node that comes up is asked for its /user/worker; one that becomes
        // unreachable or leaves has its part of the step moved at once, without waiting for downing.
        Receive<ClusterEvent.MemberUp>(up => IdentifyWorker(up.Member));
        Receive<ClusterEvent.ReachableMember>(back => IdentifyWorker(back.Member));
        Receive<ActorIdentity>(HandleIdentity);
        Receive<ClusterEvent.UnreachableMember>(lost => RemoveWorkerNode(lost.Member, "is unreachable"));
        Receive<ClusterEvent.MemberLeft>(left => RemoveWorkerNode(left.Member, "is leaving the cluster"));
        Receive<ClusterEvent.MemberExited>(left => RemoveWorkerNode(left.Member, "is leaving the cluster"));
        Receive<ClusterEvent.MemberRemoved>(removed => RemoveWorkerNode(removed.Member, "was removed from the cluster"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });

        // A worker node whose connection drops (its process died, or the network failed) is set aside
        // and its part of the step moved at once, seconds before the failure detector could mark it
        // unreachable. It stays a member and is asked every second whether it is there: if it answers
        // it takes part again; if not, failure detection removes it as above. (Whoever finishes a node
        // first wins: any worker computes the same bits.)
        Receive<DisassociatedEvent>(lost => SuspendWorkerNode(lost.RemoteAddress));
        Receive<ProbeSuspended>(_ => ProbeSuspendedWorkers());
    }

    private static void IdentifyWorker(Member member)
    {
        if (!member.HasRole(WorkerRole) || member.Status != MemberStatus.Up) return;
        Context.ActorSelection(new RootActorPath(member.Address) / "user" / WorkerActorName).Tell(new Identify(member.Address));
    }

    private void HandleIdentity(ActorIdentity identity)
    {
        if (identity.MessageId is not Address address) return;
        var subject = identity.Subject is null || identity.Subject.IsNobody() ? null : identity.Subject;
        if (_workerNodes.TryGetValue(address, out var known) && _workers.TryGetValue(known, out var state) && state.Suspended)
        {
            // The answer to a probe: the same worker is back, or the node is still away.
            if (Equals(subject, known))
            {
                ResumeWorker(known, state);
                return;
            }
            if (subject is null) return;
            // A new incarnation of the node at the same address (found through membership): the old
            // worker is gone for good.
            Context.Unwatch(known);
            RemoveWorker(known, "was replaced by a new incarnation of its node");
        }
        if (subject is null)
        {
            _log.Warning("worker node {0} has no /user/{1} actor", address, WorkerActorName);
            return;
        }
        _workerNodes[address] = subject;
        AddWorker(subject);
    }

    private void RemoveWorkerNode(Member member, string why)
    {
        if (!member.HasRole(WorkerRole) || !_workerNodes.Remove(member.Address, out var worker)) return;
        Context.Unwatch(worker);
        RemoveWorker(worker, why);
    }

    /// <summary>Adds a worker found by registration or cluster membership: watch it and set it up.</summary>
    private void AddWorker(IActorRef worker)
    {
        if (_workers.ContainsKey(worker)) return;
        _workers[worker] = new WorkerState();
        Context.Watch(worker);
        worker.Tell(_setup);
        _log.Info("worker {0} found; setting it up", worker.Path);
    }

    private void HandleSetupAccepted(SetupAccepted accepted)
    {
        if (accepted.RunId != RunId || !_workers.TryGetValue(Sender, out var state) || state.Ready) return;
        state.Ready = true;
        if (state.Suspended) return; // it joins when its connection is back
        _ready.Add(Sender);
        _log.Info("worker {0} ready ({1} ready)", Sender.Path, _ready.Count);
        JoinWork();
    }

    /// <summary>After a worker became ready: training goes on if it was waiting for workers (else the worker takes part from the next step).</summary>
    private void JoinWork()
    {
        if (_phase != Phase.Waiting) return;

        if (_ready.Count < WorkersNeeded) return;
        Training();
        if (_step is null)
        {
            StartStep();
            return;
        }
        foreach (var node in _step.Unassigned().ToList()) Assign(node, exclude: null);
        if (_step is not null) RestartDeadline();
    }

    private void HandleSetupRefused(SetupRefused refused)
    {
        if (refused.RunId != RunId) return;
        _log.Error("worker {0} refused the run: {1}", Sender.Path, refused.Reason);
        Context.Unwatch(Sender);
        _workers.Remove(Sender);
    }

    private void RemoveWorker(IActorRef worker, string why)
    {
        if (!_workers.Remove(worker, out var state)) return;
        var wasReady = _ready.Remove(worker);
        MoveNodesOf(worker, wasReady, $"worker {worker.Path} {why}");
    }

    /// <summary>Gives the worker's unfinished nodes to the others; waits for workers if none is left.</summary>
    private void MoveNodesOf(IActorRef worker, bool wasReady, string what)
    {
        var orphans = _step?.Nodes.Values.Where(n => n.Result is null && n.AssignedTo.Remove(worker)).ToList() ?? [];
        _log.Warning("{0}; {1} ready workers left, {2} of its nodes to move", what, _ready.Count, orphans.Count);
        foreach (var node in orphans.Where(n => n.AssignedTo.Count == 0))
        {
            Assign(node, exclude: worker);
            if (_step is null) return; // the run failed
        }
        if (_ready.Count == 0 && _step is not null && wasReady) WaitingForWorkers();
    }

    private void SuspendWorkerNode(Address address)
    {
        if (!_workerNodes.TryGetValue(address, out var worker) || !_workers.TryGetValue(worker, out var state) || state.Suspended) return;
        state.Suspended = true;
        state.Busy = 0;
        state.SentVersion = -1; // what was on its way may be lost
        var wasReady = _ready.Remove(worker);
        if (!Timers.IsTimerActive(ProbeSuspended.Key)) Timers.StartPeriodicTimer(ProbeSuspended.Key, ProbeSuspended.Instance, _settings.SuspendedProbe);
        MoveNodesOf(worker, wasReady, $"lost the connection to worker node {address}; setting it aside until it answers again or is removed");
    }

    private void ProbeSuspendedWorkers()
    {
        var suspended = _workerNodes.Where(n => _workers.TryGetValue(n.Value, out var state) && state.Suspended).ToList();
        if (suspended.Count == 0)
        {
            Timers.Cancel(ProbeSuspended.Key);
            return;
        }
        foreach (var (address, worker) in suspended) worker.Tell(new Identify(address));
    }

    private void ResumeWorker(IActorRef worker, WorkerState state)
    {
        state.Suspended = false;
        if (!state.Ready)
        {
            worker.Tell(_setup); // the setup may have been lost with the connection
            return;
        }
        _ready.Add(worker);
        _log.Info("worker {0} answers again ({1} ready)", worker.Path, _ready.Count);
        JoinWork();
    }

    // ---- Steps ------------------------------------------------------------------------------

    private void Work()
    {
        Receive<GradientComputed>(HandleResult);
        Receive<VersionMismatch>(HandleVersionMismatch);
    }

    /// <summary>Cuts the next batch into nodes, one contiguous range of chunks per ready worker, and sends them out.</summary>
    private void StartStep()
    {
        if (_run.Finished)
        {
            Finish();
            return;
        }
        var batch = _run.CurrentBatch;
        var chunkCount = _run.ChunkCount;
        var chunkSize = _run.Settings.ChunkSize;
        var sampleStart = _run.BatchIndex * _run.Settings.BatchSize;
        var step = new StepState(_run.Version, _run.Version, _run.Epoch, sampleStart, batch.Length, chunkCount);
        _run.BeginStep();

        var workers = _ready.Count;
        foreach (var state in _workers.Values) state.Busy = 0; // late answers to the last step never come back to lower it
        for (var w = 0; w < workers; w++)
        {
            int first = w * chunkCount / workers, end = (w + 1) * chunkCount / workers;
            if (end == first) continue;
            foreach (var (start, size) in ChunkTree.Blocks(first, end - first, chunkCount))
            {
                var from = start * chunkSize;
                var to = Math.Min((start + size) * chunkSize, batch.Length);
                step.Nodes[(start, size)] = new NodeState(start, size, sampleStart + from, to - from) { Preferred = _ready[w] };
            }
        }
        step.Remaining = step.Nodes.Count;
        _step = step;

        // Broadcast this version to every ready worker (idle ones too, so any can take over a node).
        foreach (var worker in _ready) SendWeights(worker);
        foreach (var node in step.Nodes.Values) Assign(node, exclude: null);
        RestartDeadline();
    }

    private void SendWeights(IActorRef worker)
    {
        var state = _workers[worker];
        if (state.SentVersion == _weights.Version) return;
        worker.Tell(_weights);
        state.SentVersion = _weights.Version;
    }

    /// <summary>Gives <paramref name="node"/> to a ready worker: its preferred one, else the least busy other than <paramref name="exclude"/>.</summary>
    private void Assign(NodeState node, IActorRef? exclude)
    {
        var step = _step;
        if (step is null) return; // the run failed meanwhile
        if (node.Attempts >= _settings.MaxAttempts)
        {
            Fail($"step {step.Number}: chunks [{node.Start}, {node.Start + node.Size}) could not be computed after {node.Attempts} attempts");
            return;
        }
        IActorRef? target = null;
        if (node.Preferred is not null && node.Attempts == 0 && _ready.Contains(node.Preferred)) target = node.Preferred;
        target ??= _ready.Where(w => !Equals(w, exclude) && !node.AssignedTo.Contains(w)).OrderBy(w => _workers[w].Busy).FirstOrDefault()
                   ?? _ready.Where(w => !node.AssignedTo.Contains(w)).OrderBy(w => _workers[w].Busy).FirstOrDefault()
                   ?? _ready.OrderBy(w => _workers[w].Busy).FirstOrDefault();
        if (target is null) return; // no ready worker: the node waits (and so does the coordinator)

        node.Attempts++;
        node.AssignedTo.Add(target);
        _workers[target].Busy++;
        SendWeights(target);
        target.Tell(new ComputeGradient(RunId, step.Number, step.Version, step.Epoch, node.SampleStart, node.SampleCount, node.Start, node.Size));
        if (node.Attempts > 1) _log.Info("step {0}: chunks [{1}, {2}) given to {3} (attempt {4})", step.Number, node.Start, node.Start + node.Size, target.Path, node.Attempts);
    }

    private void HandleResult(GradientComputed result)
    {
        var step = _step;
        if (result.RunId != RunId)
        {
            _log.Warning("dropping a result for run {0} from {1}", result.RunId, Sender.Path);
            return;
        }
        if (step is null || result.Step != step.Number || result.Version != step.Version)
        {
            _log.Info("dropping a stale result for step {0}, version {1} from {2} (now at step {3})", result.Step, result.Version, Sender.Path, step?.Number ?? _run.Version);
            return;
        }
        if (!step.Nodes.TryGetValue((result.NodeStart, result.NodeSize), out var node))
        {
            _log.Warning("step {0}: dropping a result for chunks [{1}, +{2}) that were never asked for, from {3}", step.Number, result.NodeStart, result.NodeSize, Sender.Path);
            return;
        }
        if (_workers.TryGetValue(Sender, out var sender) && node.AssignedTo.Remove(Sender)) sender.Busy--;
        if (node.Result is not null)
        {
            _log.Debug("step {0}: ignoring a duplicate result for chunks [{1}, {2}) from {3}", step.Number, node.Start, node.Start + node.Size, Sender.Path);
            return;
        }
        var parameterCount = _run.Settings.Architecture.ParameterCount;
        if (result.Sum.Length != parameterCount || result.SampleCount != node.SampleCount)
        {
            _log.Warning("step {0}: rejecting a result of the wrong shape from {1} ({2} values for {3} samples; expected {4} values for {5}); recomputing elsewhere",
                step.Number, Sender.Path, result.Sum.Length, result.SampleCount, parameterCount, node.SampleCount);
            if (node.AssignedTo.Count == 0) Assign(node, exclude: Sender);
            return;
        }
        if (!double.IsFinite(result.LossSum) || !result.Sum.AllFinite())
        {
            _log.Warning("step {0}: rejecting a result with NaN or infinite values from {1} for chunks [{2}, {3}); recomputing elsewhere",
                step.Number, Sender.Path, node.Start, node.Start + node.Size);
            if (node.AssignedTo.Count == 0) Assign(node, exclude: Sender);
            return;
        }

        var sum = _pool.Count > 0 ? _pool.Pop() : new GradientSum(parameterCount);
        result.Sum.Span.CopyTo(sum.Values);
        sum.SampleCount = result.SampleCount;
        sum.LossSum = result.LossSum;
        sum.CorrectCount = result.CorrectCount;
        node.Result = sum;
        step.SlowestCompute = Math.Max(step.SlowestCompute, result.ComputeSeconds);
        if (--step.Remaining == 0) CompleteStep();
    }

    private void HandleVersionMismatch(VersionMismatch mismatch)
    {
        var step = _step;
        if (mismatch.RunId != RunId || step is null || mismatch.Step != step.Number) return;
        if (!_workers.TryGetValue(Sender, out var state)) return;
        _log.Warning("worker {0} holds version {1}, not {2}; sending the weights again", Sender.Path, mismatch.HeldVersion, mismatch.RequestedVersion);
        state.SentVersion = -1;
        if (step.Nodes.TryGetValue((mismatch.NodeStart, mismatch.NodeSize), out var node) && node.Result is null && node.AssignedTo.Remove(Sender))
        {
            state.Busy--;
            Assign(node, exclude: null);
        }
    }

    private void HandleDeadline(StepDeadline deadline)
    {
        var step = _step;
        if (step is null || deadline.Step != step.Number || deadline.Generation != _deadlineGeneration) return;
        var late = step.Nodes.Values.Where(n => n.Result is null).ToList();
        foreach (var node in late)
        {
            _log.Warning("step {0}: chunks [{1}, {2}) missed the {3:0.###} s deadline on {4}; giving them to another worker",
                step.Number, node.Start, node.Start + node.Size, _settings.StepDeadline.TotalSeconds, string.Join(", ", node.AssignedTo.Select(w => w.Path.ToString())));
            Assign(node, exclude: node.AssignedTo.FirstOrDefault());
            if (_step is null) return; // the run failed
        }
        RestartDeadline();
    }

    private void RestartDeadline() =>
        Timers.StartSingleTimer(StepDeadline.Key, new StepDeadline(_step!.Number, ++_deadlineGeneration), _settings.StepDeadline);

    /// <summary>
    /// All nodes are in: add them in tree order, apply the update, and go on. At the end of an epoch
    /// the next step is sent out first, so the workers compute while this actor evaluates the test set.
    /// </summary>
    private void CompleteStep()
    {
        var step = _step!;
        Timers.Cancel(StepDeadline.Key);
        var started = Stopwatch.GetTimestamp();
        var nodes = step.Nodes.ToDictionary(p => p.Key, p => p.Value.Result!);
        var root = ChunkTree.Reduce(step.ChunkCount, nodes, (left, right) =>
        {
            left.Add(right);
            return left;
        });
        bool epochEnded;
        try
        {
            epochEnded = _run.Apply(root);
        }
        catch (TrainingDivergedException e)
        {
            Fail(e.Message);
            return;
        }
        foreach (var sum in nodes.Values) _pool.Push(sum);
        _step = null;
        _weights = new WeightsUpdate(RunId, _run.Version, FloatTensor.CopyOf(_run.Parameters));
        _timing.Add(Stopwatch.GetElapsedTime(step.Started).TotalSeconds, step.SlowestCompute, Stopwatch.GetElapsedTime(started).TotalSeconds);

        if (_run.Finished)
        {
            ReportEpoch();
            Finish();
        }
        else if (_pauseRequested)
        {
            if (epochEnded && ReportEpoch()) Finish();
            else Paused();
        }
        else
        {
            StartStep();
            // The target is checked after the evaluation, while the next step is already out: that
            // step is abandoned (its late results are ignored), so the final weights are the
            // evaluated ones, the same bits as a run of exactly this many epochs.
            if (epochEnded && ReportEpoch()) Finish();
        }
    }

    /// <summary>Evaluates and reports the epoch that just ended; true when it reached the target accuracy.</summary>
    private bool ReportEpoch()
    {
        _lastReport = _run.CompleteEpoch(_timing.Take());
        _listener.Tell(new EpochCompleted(_lastReport));
        if (_settings.TargetAccuracy is not { } target || _lastReport.TestAccuracy < target) return false;
        _log.Info("test accuracy {0:F4} reached the target {1:F4} after epoch {2}", _lastReport.TestAccuracy, target, _lastReport.Epoch);
        return true;
    }

    private void Finish()
    {
        _log.Info("training finished after {0} updates", _run.Version);
        _listener.Tell(new TrainingFinished(_run.Version, FloatTensor.CopyOf(_run.Parameters), _lastReport));
        _step = null;
        Finished();
    }

    private void Fail(string reason)
    {
        _log.Error("training failed: {0}", reason);
        _listener.Tell(new TrainingFailed(reason));
        _step = null;
        Finished();
    }

    // ---- State kept per worker, step and node -------------------------------------------

    /// <summary>Step-time totals of the current epoch; serialization comes from the process's wire metrics.</summary>
    private sealed class TimingTotals : IDisposable
    {
        private readonly WireStatistics _wire = new();
        private int _steps;
        private double _stepSeconds, _computeSeconds, _coordinatorSeconds, _wireSeconds;
        private long _wireBytes;

        public void Add(double step, double compute, double coordinator)
        {
            _steps++;
            _stepSeconds += step;
            _computeSeconds += compute;
            _coordinatorSeconds += coordinator;
        }

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

    private sealed class WorkerState
    {
        public bool Ready { get; set; }
        /// <summary>Its connection dropped: no work until it is back (or the node is removed).</summary>
        public bool Suspended { get; set; }
        public long SentVersion { get; set; } = -1;
        public int Busy { get; set; }
    }

    private sealed class StepState(long number, long version, int epoch, int sampleStart, int sampleCount, int chunkCount)
    {
        public long Number { get; } = number;
        public long Version { get; } = version;
        public int Epoch { get; } = epoch;
        public int SampleStart { get; } = sampleStart;
        public int SampleCount { get; } = sampleCount;
        public int ChunkCount { get; } = chunkCount;
        public Dictionary<(int Start, int Size), NodeState> Nodes { get; } = [];
        public int Remaining { get; set; }
        public long Started { get; } = Stopwatch.GetTimestamp();
        public double SlowestCompute { get; set; }

        public IEnumerable<NodeState> Unassigned() => Nodes.Values.Where(n => n.Result is null && n.AssignedTo.Count == 0);
    }

    private sealed class NodeState(int start, int size, int sampleStart, int sampleCount)
    {
        public int Start { get; } = start;
        public int Size { get; } = size;
        public int SampleStart { get; } = sampleStart;
        public int SampleCount { get; } = sampleCount;
        public IActorRef? Preferred { get; init; }
        public List<IActorRef> AssignedTo { get; } = [];
        public int Attempts { get; set; }
        public GradientSum? Result { get; set; }
    }

    private sealed class StepDeadline(long step, int generation)
    {
        public const string Key = "step-deadline";
        public long Step { get; } = step;
        public int Generation { get; } = generation;
    }

    private sealed class WaitTimeout
    {
        public const string Key = "wait-timeout";
        public static readonly WaitTimeout Instance = new();
    }

    private sealed class WaitReport
    {
        public const string Key = "wait-report";
        public static readonly WaitReport Instance = new();
    }

    private sealed class ProbeSuspended
    {
        public const string Key = "probe-suspended";
        public static readonly ProbeSuspended Instance = new();
    }
}
