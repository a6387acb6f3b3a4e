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

    /// <summary>A step in flight: its gather and its number.</summary>
    private sealed record Step(IActorRef Gather, long Number);

    /// <summary>A coordinator for <paramref name="run"/> that reports to <paramref name="listener"/>.</summary>
    public TrainingCoordinator(TrainingRun run, CoordinatorSettings settings, IActorRef listener)
    {
        (_run, _settings, _listener) = (run, settings, listener);
        var architecture = run.Settings.Architecture;
        string? problem = null;
        if (settings.Channel is { } channelSettings)
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
        _setup = new SetupRun(
            _runGuid.ToString("N"), [.. architecture.Sizes], architecture.Hidden, architecture.Output, architecture.Cost,
            run.Settings.ChunkSize, run.Settings.Seed, run.Train.Count, run.Train.ContentHash,
            run.Scaling.Kind, FloatTensor.CopyOf(run.Scaling.Shift), FloatTensor.CopyOf(run.Scaling.Scale), _channel?.Endpoint);
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

    private void Paused()
    {
        CancelWaitingTimers();
        _log.Info("paused after {0} updates", _run.Version);
        _listener.Tell(new TrainingPaused(_run.Version));
        Become(() =>
        {
            RunAddress(step: null, pauseRequested: false);
            Receive<WorkerReady>(ready => Staffing(null, ready));
            Receive<WorkerLost>(lost => Staffing(null, lost));
            Receive<PauseTraining>(_ => { });
            Receive<ResumeTraining>(_ =>
            {
                _log.Info("resuming");
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
        Become(() =>
        {
            Receive<RegisterWorker>(message => _roster.Forward(message));
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
        Receive<RegisterWorker>(message => _roster.Forward(message));
        Receive<SetupAccepted>(message => _roster.Forward(message));
        Receive<SetupRefused>(message => _roster.Forward(message));
        Receive<ActorIdentity>(message => _roster.Forward(message));
        Receive<GradientComputed>(result => ToStep(step, result, Sender, result.RunId, result.Step, result.Version));
        Receive<VersionMismatch>(mismatch => ToStep(step, mismatch, Sender, mismatch.RunId, mismatch.Step, mismatch.RequestedVersion));
        Receive<TensorArrived>(frame => ToStep(step, frame));
        Receive<TensorLinkFailed>(LinkFailed);
        Receive<StepGathered>(gathered =>
        {
            if (step is not null && gathered.Step == step.Number) Completed(gathered, pauseRequested);
        });
        Receive<StepFailed>(failed =>
        {
            if (step is not null && failed.Step == step.Number) Fail(failed.Reason);
        });
    }

    /// <summary>Hands an answer from <paramref name="worker"/> to the gather of its step, or drops it as another run's or a stale one.</summary>
    private void ToStep(Step? step, object answer, IActorRef worker, string runId, long number, long version)
    {
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

    /// <summary>The roster's news: the ready workers, passed on to the step in flight.</summary>
    private void Staffing(Step? step, IRosterNews news)
    {
        _ready = news.Ready;
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
        _run.BeginStep();
        _stepWeights?.Release();
        _stepWeights = Snapshot(_run.Parameters);
        var weights = new WeightsUpdate(_setup.RunId, _run.Version, _stepWeights);
        var compute = new StepGather.ComputeSettings(_settings.StepDeadline, _settings.MaxAttempts);
        var step = new Step(Context.ActorOf(StepGather.Props(plan, weights, _ready, compute, _pool, _route, _endpoints), $"step-{plan.Number}"), plan.Number);
        if (_ready.Count == 0) WaitingForWorkers(step, pauseRequested);
        else Training(step, pauseRequested);
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

    private sealed class WaitReport
    {
        public const string Key = "wait-report";
        public static readonly WaitReport Instance = new();
    }
}
