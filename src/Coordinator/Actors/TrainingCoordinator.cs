using System.Collections.Immutable;
using System.Diagnostics;
using Backprop.Channel;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

/// <summary>
/// The coordinator actor. It owns the training run (weights, optimizer state, epoch order, step):
/// for every step it starts a <see cref="StepGather"/> that gives the batch's chunk-tree nodes to the
/// ready workers and answers with their sum; the coordinator applies the averaged gradient and goes
/// on. A <see cref="WorkerRoster"/> finds the workers and says which are ready. This actor is the
/// run's one address: workers' answers come here and are handed to the roster or to the step's gather.
/// </summary>
/// <remarks>
/// States: waiting for workers → training ⇄ paused → finished (a training run whose last worker goes
/// waits for workers again, with its step still open). Every wait has a deadline: a late node is
/// given to another worker too (in the gather), and a run with no workers fails after
/// <see cref="CoordinatorSettings.WorkerWait"/>.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "An actor releases what it holds in PostStop.")]
public sealed class TrainingCoordinator : ReceiveActor, IWithTimers
{
    private readonly TrainingRun _run;
    private readonly CoordinatorSettings _settings;
    private readonly IActorRef _listener;
    private readonly SetupRun _setup;
    private readonly IActorRef _roster;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly StepTimingTotals _timing = new();
    private GradientSumPool _pool = new();
    private ImmutableList<IActorRef> _ready = [];   // the roster's latest word
    private readonly Dictionary<IActorRef, string> _endpoints = [];  // workers' tensor channels
    private readonly Dictionary<string, IActorRef> _byEndpoint = [];
    private readonly TensorChannel? _channel;
    private readonly WeightsRoute _route = WeightsRoute.InProcess;
    private readonly Guid _runGuid = Guid.NewGuid();
    private FloatTensor? _stepWeights;
    private readonly bool _allReduce;
    private readonly HashSet<IActorRef> _replicas = [];   // all-reduce: the workers holding the current version's replica
    private readonly Dictionary<IActorRef, int> _strikes = [];   // missed deadlines and refused results in a row
    private readonly Random _verifySeeds = new(System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue));
    private readonly HashSet<IActorRef> _members = [];    // every worker the roster has reported ready in this run
    private readonly RefusedMessages _refused;

    /// <summary>A step in flight: its gather and its number.</summary>
    private sealed record Step(IActorRef Gather, long Number);

    /// <summary>A coordinator for <paramref name="run"/> that reports to <paramref name="listener"/>.</summary>
    public TrainingCoordinator(TrainingRun run, CoordinatorSettings settings, IActorRef listener)
    {
        (_run, _settings, _listener) = (run, settings, listener);
        _refused = new RefusedMessages(_log, "coordinator");
        var architecture = run.Settings.Architecture;
        string? problem = null;
        // Workers found in the cluster are in other processes: tensors must take a channel (by
        // default on this node's host, any free port).
        var channelSettings = settings.Channel
            ?? (settings.DiscoverClusterWorkers ? new ChannelSettings(Akka.Cluster.Cluster.Get(Context.System).SelfAddress.Host ?? "127.0.0.1") : null);
        if (channelSettings is not null)
        {
            try
            {
                var log = _log;
                _channel = TensorChannel.Open(channelSettings, new ActorInbox(Self), message => log.Warning(message));
                _channel.MaximumValues = architecture.ParameterCount;
                _route = new WeightsRoute(_channel, _runGuid);
                _log.Info("tensor channel listening at {0}", _channel.Endpoint);
            }
            catch (InvalidInputException e)
            {
                problem = e.Message;
            }
        }
        _allReduce = _channel is not null && settings.Reduce == ReduceMode.AllReduce;
        _setup = new SetupRun(
            _runGuid.ToString("N"), [.. architecture.Sizes], architecture.Hidden, architecture.Output, architecture.Cost,
            run.Settings.ChunkSize, run.Settings.Seed, run.Train.Count, run.Train.ContentHash,
            run.Scaling.Kind, FloatTensor.CopyOf(run.Scaling.Shift), FloatTensor.CopyOf(run.Scaling.Scale), _channel?.Endpoint,
            _allReduce ? ReduceMode.AllReduce : ReduceMode.Star, run.Settings.Optimizer, settings.StateCheckEvery);
        if (_channel is not null) _channel.MaximumValues = architecture.ParameterCount * (1 + run.OptimizerState.Arrays.Count);
        _roster = Context.ActorOf(WorkerRoster.Props(_setup, settings.DiscoverClusterWorkers, settings.SuspendedProbe), "roster");
        if (problem is null) WaitingForWorkers(step: null, pauseRequested: false);
        else Fail(problem);
    }

    /// <summary>Props for a coordinator.</summary>
    public static Props Props(TrainingRun run, CoordinatorSettings settings, IActorRef listener) =>
        Akka.Actor.Props.Create(() => new TrainingCoordinator(run, settings, listener));

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PostStop()
    {
        _timing.Dispose();
        _channel?.Dispose();
        _refused.LogSummary("stopped");
    }

    // ---- States ---------------------------------------------------------------------------

    private void WaitingForWorkers(Step? step, bool pauseRequested)
    {
        _log.Info("waiting for workers ({0} of {1} ready)", _ready.Count, WorkersNeeded(step));
        Timers.StartSingleTimer(WaitTimeout.Key, WaitTimeout.Instance, _settings.WorkerWait);
        Timers.StartPeriodicTimer(WaitReport.Key, WaitReport.Instance, _settings.WaitingReport);
        Become(() => Waiting(step, pauseRequested));
    }

    private void Waiting(Step? step, bool pauseRequested)
    {
        RunAddress(step, pauseRequested);
        Receive<WorkerReady>(ready =>
        {
            Staffing(step, ready);
            if (_ready.Count < WorkersNeeded(step)) return;
            if (step is null) StartStep(pauseRequested);
            else Training(step, pauseRequested);
        });
        Receive<WorkerLost>(lost => Staffing(step, lost));
        Receive<WaitReport>(_ => _log.Warning("still waiting for workers: {0} of {1} ready", _ready.Count, WorkersNeeded(step)));
        Receive<WaitTimeout>(_ => Fail($"no workers: {_ready.Count} of {WorkersNeeded(step)} needed were ready after {_settings.WorkerWait.TotalSeconds:0.#} s"));
        PauseRequests(pause => Become(() => Waiting(step, pause)));
    }

    /// <summary>Before the first step, the configured minimum; once training has begun, one is enough.</summary>
    private int WorkersNeeded(Step? step) => step is null && _run.Version == 0 ? _settings.MinWorkers : 1;

    private void Training(Step step, bool pauseRequested)
    {
        CancelWaitingTimers();
        Become(() =>
        {
            RunAddress(step, pauseRequested);
            Receive<WorkerReady>(ready => Staffing(step, ready));
            Receive<WorkerLost>(lost =>
            {
                Staffing(step, lost);
                if (_ready.Count == 0) WaitingForWorkers(step, pauseRequested);
            });
            PauseRequests(pause => Training(step, pause));
        });
    }

    /// <summary>Paused until <see cref="ResumeTraining"/>, or until <see cref="CoordinatorSettings.PauseLimit"/> has passed (a second pause does not extend it).</summary>
    private void Paused()
    {
        CancelWaitingTimers();
        _log.Info("paused after {0} updates", _run.Version);
        _listener.Tell(new TrainingPaused(_run.Version));
        Timers.StartSingleTimer(PauseLimitReached.Key, PauseLimitReached.Instance, _settings.PauseLimit);
        Become(() =>
        {
            RunAddress(step: null, pauseRequested: false);
            Receive<WorkerReady>(ready => Staffing(null, ready));
            Receive<WorkerLost>(lost => Staffing(null, lost));
            Receive<PauseTraining>(_ => { });
            Receive<ResumeTraining>(_ =>
            {
                _log.Info("resuming");
                Timers.Cancel(PauseLimitReached.Key);
                StartStep(pauseRequested: false);
            });
            Receive<PauseLimitReached>(_ =>
            {
                _log.Warning("paused for {0}, the pause limit (CoordinatorSettings.PauseLimit); resuming", _settings.PauseLimit);
                StartStep(pauseRequested: false);
            });
        });
    }

    private void Finished()
    {
        Timers.CancelAll();
        _stepWeights?.Release();
        _stepWeights = null;
        // A step in flight is abandoned: its gather stops, and late answers to it are ignored.
        foreach (var child in Context.GetChildren().Where(c => !c.Equals(_roster))) Context.Stop(child);
        _roster.Tell(RunOver.Instance);
        _refused.LogSummary("run over");
        Become(() =>
        {
            Receive<RegisterWorker>(Register);
            Receive<ActorIdentity>(message => _roster.Forward(message));
            Receive<TensorArrived>(frame => _channel?.Pool.Return(frame.Payload));
            Receive<GradientComputed>(result => result.Sum.Release());
            ReceiveAny(message => _log.Debug("run finished; ignoring {0}", message));
        });
    }

    private void CancelWaitingTimers()
    {
        Timers.Cancel(WaitTimeout.Key);
        Timers.Cancel(WaitReport.Key);
    }

    // ---- What every running state does -------------------------------------------------------

    /// <summary>
    /// The run's address: workers' answers go to the roster or to the step in flight, and the step's
    /// own answer (its sum, or its failure) moves the run on.
    /// </summary>
    private void RunAddress(Step? step, bool pauseRequested)
    {
        Receive<RegisterWorker>(Register);
        Receive<SetupAccepted>(message => _roster.Forward(message));   // the roster takes them only from a worker it set up
        Receive<SetupRefused>(message => _roster.Forward(message));
        Receive<ActorIdentity>(message => _roster.Forward(message));
        Receive<GradientComputed>(result => ToStep(step, result, Sender, result.RunId, result.Step, result.Version));
        Receive<VersionMismatch>(mismatch => ToStep(step, mismatch, Sender, mismatch.RunId, mismatch.Step, mismatch.RequestedVersion));
        Receive<TensorArrived>(frame => ToStep(step, frame));
        Receive<NodeComputed>(m => ToStep(step, m, Sender, m.RunId, m.Step, m.Step));
        Receive<StepReduced>(m => ToStep(step, m, Sender, m.RunId, m.Step, m.Step));
        Receive<NeedState>(m => ToStep(step, m, Sender, m.RunId, m.Step, m.Step));
        Receive<PartHashes>(m => ToStep(step, m, Sender, m.RunId, m.Step, m.Step));
        Receive<StepAllReduced>(reduced =>
        {
            if (step is not null && reduced.Step == step.Number) CompletedAllReduce(reduced, pauseRequested);
        });
        Receive<TensorLinkFailed>(LinkFailed);
        Receive<WorkerFaulted>(fault => Faulted(step, fault));
        Receive<StepGathered>(gathered =>
        {
            if (step is not null && gathered.Step == step.Number) Completed(gathered, pauseRequested);
        });
        Receive<StepFailed>(failed =>
        {
            if (step is not null && failed.Step == step.Number) Fail(failed.Reason);
        });
    }

    /// <summary>In-process mode: a worker of this actor system announces itself. Workers in other processes are found by membership, never by this message.</summary>
    private void Register(RegisterWorker message)
    {
        if (_settings.DiscoverClusterWorkers || !Sender.Path.Address.HasLocalScope)
        {
            _refused.Refuse(message, Sender, "workers register only in the coordinator's own process");
            return;
        }
        _roster.Forward(message);
    }

    /// <summary>Hands an answer from <paramref name="worker"/> to the gather of its step, or drops it as another run's or a stale one.</summary>
    private void ToStep(Step? step, object answer, IActorRef worker, string runId, long number, long version)
    {
        if (!_members.Contains(worker))
        {
            _refused.Refuse(answer, worker, "not a worker of this run");
            if (answer is GradientComputed refused) refused.Sum.Release();
            return;
        }
        if (runId != _setup.RunId)
            _log.Warning("dropping a result for run {0} from {1}", runId, worker.Path);
        else if (step is null || number != step.Number || version != step.Number) // a step starts from the weights version of its number
            _log.Info("dropping a stale result for step {0}, version {1} from {2} (now at step {3})", number, version, worker.Path, step?.Number ?? _run.Version);
        else
        {
            step.Gather.Tell(answer, worker);
            return;
        }
        if (answer is GradientComputed dropped) dropped.Sum.Release();
    }

    /// <summary>A frame of the tensor channel: a worker's node sum, which becomes its <see cref="GradientComputed"/>.</summary>
    private void ToStep(Step? step, TensorArrived frame)
    {
        var header = frame.Header;
        if (!_byEndpoint.TryGetValue(frame.Peer, out var worker) || header.Kind != FrameKind.NodeSum)
        {
            _log.Warning("tensor channel: dropping a {0} frame of step {1} from {2}, which is not a worker of this run", header.Kind, header.Step, frame.Peer);
            _channel!.Pool.Return(frame.Payload);
            return;
        }
        var result = new GradientComputed(header.Run == _runGuid ? _setup.RunId : header.Run.ToString("N"), header.Step, header.Version, header.NodeStart, header.NodeSize,
            header.SampleCount, header.LossSum, header.CorrectCount, FloatTensor.Pooled(frame.Payload, _channel!.Pool.Return), header.ComputeSeconds);
        ToStep(step, result, worker, result.RunId, result.Step, result.Version);
    }

    /// <summary>The channel to or from a worker failed: the roster sets the worker aside, as when its node's connection drops.</summary>
    private void LinkFailed(TensorLinkFailed failed)
    {
        if (_byEndpoint.TryGetValue(failed.Peer, out var worker)) _roster.Tell(new TensorLinkLost(worker, failed.Reason));
    }

    /// <summary>
    /// A step's gather found fault with a worker: one proven wrong is set aside at once, one late or
    /// refused <see cref="CoordinatorSettings.MaxStrikes"/> times in a row too.
    /// </summary>
    private void Faulted(Step? step, WorkerFaulted fault)
    {
        var strikes = _strikes[fault.Worker] = _strikes.GetValueOrDefault(fault.Worker) + 1;
        if (fault.Proven)
        {
            Quarantine(step, fault.Worker, fault.Reason);
            return;
        }
        _log.Warning("worker {0}: strike {1} of {2}: {3}", fault.Worker.Path, strikes, _settings.MaxStrikes, fault.Reason);
        if (strikes >= _settings.MaxStrikes) Quarantine(step, fault.Worker, $"{strikes} strikes in a row (the last: {fault.Reason})");
    }

    /// <summary>No more work for <paramref name="worker"/>: from this moment (the step in flight is told), and the roster's word follows.</summary>
    private void Quarantine(Step? step, IActorRef worker, string why)
    {
        _replicas.Remove(worker);
        _roster.Tell(new QuarantineWorker(worker, why));
        if (!_ready.Contains(worker)) return;
        _ready = _ready.Remove(worker);
        step?.Gather.Tell(new WorkerLost(worker, _ready));
    }

    /// <summary>Workers that delivered in a step start their count of strikes again.</summary>
    private void Delivered(IReadOnlyCollection<IActorRef> workers)
    {
        foreach (var worker in workers) _strikes.Remove(worker);
    }

    /// <summary>The roster's news: the ready workers, passed on to the step in flight.</summary>
    private void Staffing(Step? step, IRosterNews news)
    {
        _ready = news.Ready;
        if (news is WorkerLost) _replicas.Remove(news.Worker);
        else _members.Add(news.Worker);
        if (news is WorkerReady { TensorEndpoint: { } endpoint } ready)
        {
            if (_endpoints.Remove(ready.Worker, out var old)) _byEndpoint.Remove(old);
            _endpoints[ready.Worker] = endpoint;
            _byEndpoint[endpoint] = ready.Worker;
        }
        step?.Gather.Tell(news);
    }

    /// <summary>Pause and resume requests in a running state: <paramref name="become"/> the same state with the request noted.</summary>
    private void PauseRequests(Action<bool> become)
    {
        Receive<PauseTraining>(_ => become(true));
        Receive<ResumeTraining>(_ => become(false));
    }

    // ---- Steps ------------------------------------------------------------------------------

    /// <summary>Starts the next step's gather with the current weights, or finishes the run.</summary>
    private void StartStep(bool pauseRequested)
    {
        if (_run.Finished)
        {
            Finish();
            return;
        }
        var plan = new StepPlan(_run.Version, _run.Epoch, _run.BatchIndex * _run.Settings.BatchSize, _run.CurrentBatch.Length,
            _run.Settings.ChunkSize, _run.Settings.Architecture.ParameterCount);
        var compute = new StepGather.ComputeSettings(_settings.StepDeadline, _settings.MaxAttempts, _settings.VerifyFraction, _verifySeeds.Next());
        Step step;
        if (_allReduce)
        {
            if (_ready.Count == 0)
            {
                WaitingForWorkers(step: null, pauseRequested);
                return;
            }
            _run.BeginStep();
            var holders = _replicas.Where(_ready.Contains).ToHashSet();
            var reduce = new AllReducePlan(_setup.RunId, _runGuid, holders, holders.Count == 0 && _run.Version == 0 ? InitialState() : null,
                _run.OptimizerState.Arrays.Count, _channel!);
            var none = new WeightsUpdate(_setup.RunId, _run.Version, FloatTensor.CopyOf([]));
            step = new Step(Context.ActorOf(StepGather.Props(plan, none, _ready, compute, _pool, _route, _endpoints, reduce), $"step-{plan.Number}"), plan.Number);
        }
        else
        {
            _run.BeginStep();
            _stepWeights?.Release();
            _stepWeights = Snapshot(_run.Parameters);
            var weights = new WeightsUpdate(_setup.RunId, _run.Version, _stepWeights);
            step = new Step(Context.ActorOf(StepGather.Props(plan, weights, _ready, compute, _pool, _route, _endpoints), $"step-{plan.Number}"), plan.Number);
        }
        if (_ready.Count == 0) WaitingForWorkers(step, pauseRequested);
        else Training(step, pauseRequested);
    }

    /// <summary>The coordinator's weights and optimizer state, packed as a State frame carries them: what the first step's workers start from.</summary>
    private FloatTensor InitialState()
    {
        var (arrays, _) = _run.OptimizerState;
        var count = _run.Parameters.Length;
        var packed = new float[count * (1 + arrays.Count)];
        _run.Parameters.CopyTo(packed, 0);
        for (var k = 0; k < arrays.Count; k++) arrays[k].CopyTo(packed, (k + 1) * count);
        return FloatTensor.TakeOwnership(packed);
    }

    /// <summary>
    /// An all-reduce step is done: record it, and go on. The weights stay on the workers; at the end
    /// of an epoch (and of the run) the coordinator fetches them from one of them first, to evaluate.
    /// </summary>
    private void CompletedAllReduce(StepAllReduced reduced, bool pauseRequested)
    {
        bool epochEnded;
        try
        {
            epochEnded = _run.Record(reduced.SampleCount, reduced.LossSum, reduced.CorrectCount);
        }
        catch (TrainingDivergedException e)
        {
            Fail(e.Message);
            return;
        }
        _replicas.Clear();
        _replicas.UnionWith(reduced.Participants);
        Delivered(reduced.Delivered);
        _timing.Add(reduced.StepSeconds, reduced.SlowestComputeSeconds, 0);
        if (!_run.Finished && !epochEnded)
        {
            if (pauseRequested) Paused();
            else StartStep(pauseRequested: false);
            return;
        }
        FetchWeights(pause =>
        {
            if (_run.Finished)
            {
                ReportEpoch();
                Finish();
            }
            else if (ReportEpoch()) Finish();
            else if (pause) Paused();
            else StartStep(pauseRequested: false);
        }, pauseRequested);
    }

    /// <summary>
    /// All-reduce: asks a replica for the current weights (over the channel) and waits for them, with
    /// the step deadline; a replica that is lost or late is replaced by another.
    /// </summary>
    private void FetchWeights(Action<bool> then, bool pauseRequested, IActorRef? tried = null)
    {
        var source = _replicas.Where(_ready.Contains).OrderBy(r => Equals(r, tried)).FirstOrDefault();
        if (source is null || !_endpoints.ContainsKey(source))
        {
            Fail($"no worker holds the weights of version {_run.Version} any more (every worker that held them was lost)");
            return;
        }
        source.Tell(new SendState(_setup.RunId, _run.Version, _channel!.Endpoint, WithOptimizer: false));
        Timers.StartSingleTimer(FetchTimeout.Key, FetchTimeout.Instance, _settings.StepDeadline);
        Become(() => Fetching(then, pauseRequested, source));
    }

    private void Fetching(Action<bool> then, bool pauseRequested, IActorRef source)
    {
        Receive<TensorArrived>(frame =>
        {
            var header = frame.Header;
            if (header.Kind == FrameKind.Weights && header.Run == _runGuid && header.Version == _run.Version
                && header.Count == _run.Parameters.Length && _endpoints.TryGetValue(source, out var asked) && frame.Peer == asked)
            {
                _run.SetParameters(frame.Payload.AsSpan(0, header.Count));
                _channel!.Pool.Return(frame.Payload);
                Timers.Cancel(FetchTimeout.Key);
                then(pauseRequested);
                return;
            }
            ToStep(null, frame);
        });
        RunAddress(step: null, pauseRequested);
        Receive<WorkerReady>(ready => Staffing(null, ready));
        Receive<WorkerLost>(lost =>
        {
            Staffing(null, lost);
            if (Equals(lost.Worker, source)) FetchWeights(then, pauseRequested, source);
        });
        Receive<FetchTimeout>(_ =>
        {
            _log.Warning("no weights from {0} after {1:0.#} s; asking another worker", source.Path, _settings.StepDeadline.TotalSeconds);
            FetchWeights(then, pauseRequested, source);
        });
        PauseRequests(pause => Become(() => Fetching(then, pause, source)));
    }

    /// <summary>The weights a step sends out: a pooled copy when they travel over the channel (held until the step is over and every send is written), else a plain one.</summary>
    private FloatTensor Snapshot(float[] parameters)
    {
        if (_channel is null) return FloatTensor.CopyOf(parameters);
        var array = _channel.Pool.Rent(parameters.Length);
        parameters.CopyTo(array, 0);
        return FloatTensor.Pooled(array, _channel.Pool.Return);
    }

    /// <summary>
    /// The step's sum is in: apply the update and go on. At the end of an epoch the next step is sent
    /// out first, so the workers compute while this actor evaluates the test set.
    /// </summary>
    private void Completed(StepGathered gathered, bool pauseRequested)
    {
        var started = Stopwatch.GetTimestamp();
        bool epochEnded;
        try
        {
            epochEnded = _run.Apply(gathered.Sum);
        }
        catch (TrainingDivergedException e)
        {
            Fail(e.Message);
            return;
        }
        _pool = gathered.Pool;
        Delivered(gathered.Delivered);
        _timing.Add(gathered.StepSeconds, gathered.SlowestComputeSeconds, gathered.ReduceSeconds + Stopwatch.GetElapsedTime(started).TotalSeconds);

        if (_run.Finished)
        {
            ReportEpoch();
            Finish();
        }
        else if (pauseRequested)
        {
            if (epochEnded && ReportEpoch()) Finish();
            else Paused();
        }
        else
        {
            StartStep(pauseRequested: false);
            // The target is checked after the evaluation, while the next step is already out: that
            // step is abandoned (its late results are ignored), so the final weights are the
            // evaluated ones, the same bits as a run of exactly this many epochs.
            if (epochEnded && ReportEpoch()) Finish();
        }
    }

    /// <summary>Evaluates and reports the epoch that just ended; true when it reached the target accuracy.</summary>
    private bool ReportEpoch()
    {
        var report = _run.CompleteEpoch(_timing.Take());
        _listener.Tell(new EpochCompleted(report));
        if (_settings.TargetAccuracy is not { } target || report.TestAccuracy < target) return false;
        _log.Info("test accuracy {0:F4} reached the target {1:F4} after epoch {2}", report.TestAccuracy, target, report.Epoch);
        return true;
    }

    private void Finish()
    {
        _log.Info("training finished after {0} updates", _run.Version);
        _listener.Tell(new TrainingFinished(_run.Version, FloatTensor.CopyOf(_run.Parameters), _run.LastReport));
        Finished();
    }

    private void Fail(string reason)
    {
        _log.Error("training failed: {0}", reason);
        _listener.Tell(new TrainingFailed(reason));
        Finished();
    }

    // ---- Timers ----------------------------------------------------------------------------

    private sealed class WaitTimeout
    {
        public const string Key = "wait-timeout";
        public static readonly WaitTimeout Instance = new();
    }

    private sealed class FetchTimeout
    {
        public const string Key = "fetch-timeout";
        public static readonly FetchTimeout Instance = new();
    }

    private sealed class PauseLimitReached
    {
        public const string Key = "pause-limit";
        public static readonly PauseLimitReached Instance = new();
    }

    private sealed class WaitReport
    {
        public const string Key = "wait-report";
        public static readonly WaitReport Instance = new();
    }
}
