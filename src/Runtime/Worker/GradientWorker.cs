using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Backprop.Channel;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Worker;

/// <summary>
/// The worker actor: holds the training data and a replica of the weights, and computes the summed
/// gradient of whatever node of a batch the coordinator asks for.
/// </summary>
/// <remarks>
/// <para>
/// A worker in another process than its coordinator opens a tensor channel (<see cref="TensorChannel"/>):
/// the weights come in over it and the gradient sums go out over it, while setup and requests come
/// through Akka. A worker in the coordinator's process gets and sends both as messages.
/// </para>
/// <para>
/// A request names the weights version it is for. A request for a version that has not arrived yet
/// (over the channel, the weights may come after the request) waits, stashed, until it does. A
/// request for an older version than the one held (a lost broadcast, a restart) computes nothing
/// and is answered <see cref="VersionMismatch"/>; the coordinator sends the weights again and
/// repeats the request.
/// </para>
/// </remarks>
public sealed partial class GradientWorker : ReceiveActor, IWithUnboundedStash
{
    private readonly IActorRef _coordinator;
    private readonly Func<FeatureScaling, DataSet> _loadData;
    private readonly int _threads;
    private readonly long _maximumFrameBytes;
    private readonly Action? _onRunFinished;
    private readonly Action<string>? _onRefused;
    private readonly ChannelSettings? _channelSettings;
    private readonly ConcurrentBag<GradientSum> _spareSums = [];   // sums whose frames have been written
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private TensorChannel? _channel;
    private Guid _runGuid;
    private readonly RefusedMessages _refused;
    private IActorRef _runOwner = ActorRefs.Nobody;   // the coordinator of the run this worker is set up for

    private string? _runId;
    private SetupRun? _setup;
    private DataSet? _data;
    private BatchEngine? _engine;
    private GradientSum? _sum;
    private FloatTensor? _weights;
    private long _version = -1;
    private int _orderEpoch = -1;
    private int[] _order = [];

    /// <summary>
    /// A worker that announces itself to <paramref name="coordinator"/> (or not, with
    /// <see cref="ActorRefs.Nobody"/>, when the coordinator finds it by cluster membership) and gets
    /// its training data from <paramref name="loadData"/> given the run's feature scaling. It refuses
    /// a model whose messages would not fit <paramref name="maximumFrameBytes"/>, calls
    /// <paramref name="onRunFinished"/> when its run ends and <paramref name="onRefused"/> with the
    /// reason when it refuses a run.
    /// </summary>
    public GradientWorker(IActorRef coordinator, Func<FeatureScaling, DataSet> loadData, int threads, long maximumFrameBytes, Action? onRunFinished, Action<string>? onRefused,
        ChannelSettings? channel, Action<long, float[]>? perturbReplica = null, WorkerFault? fault = null)
    {
        _fault = fault;
        _onRefused = onRefused;
        _channelSettings = channel;
        _perturbReplica = perturbReplica;
        _coordinator = coordinator;
        _loadData = loadData;
        _threads = Math.Max(1, threads);
        _maximumFrameBytes = maximumFrameBytes;
        _onRunFinished = onRunFinished;
        _refused = new RefusedMessages(_log, "worker");
        Receive<SetupRun>(setup =>
        {
            if (FromCoordinator(setup) && NotInAnotherRun(setup)) HandleSetup(setup);
        });
        ReceiveFromCoordinator<WeightsUpdate>(HandleWeights, refused: update => update.Parameters.Release());
        ReceiveFromCoordinator<ComputeGradient>(HandleCompute);
        ReceiveFromCoordinator<RunFinished>(HandleRunFinished);
        Receive<TensorArrived>(HandleFrame);
        ReceiveFromCoordinator<StepLayout>(HandleLayout);
        ReceiveFromCoordinator<SendState>(HandleSendState);
        ReceiveFromCoordinator<HashParts>(HandleHashParts);
        Receive<TensorLinkFailed>(failed => _log.Warning("tensor channel: {0} {1}", failed.Peer, failed.Reason));
    }

    /// <summary>
    /// Props for a worker; give it <see cref="RuntimeConfig.WorkerDispatcher"/> so that it runs on a
    /// thread of its own. With <paramref name="channel"/> it listens for tensors there (a worker node);
    /// without, it exchanges them as messages (a worker in the coordinator's process).
    /// </summary>
    public static Props Props(IActorRef coordinator, Func<FeatureScaling, DataSet> loadData, int threads,
        long maximumFrameBytes = long.MaxValue, Action? onRunFinished = null, Action<string>? onRefused = null, ChannelSettings? channel = null,
        WorkerFault? fault = null) =>
        Akka.Actor.Props.Create(() => new GradientWorker(coordinator, loadData, threads, maximumFrameBytes, onRunFinished, onRefused, channel, null, fault));

    /// <summary>Props for a worker on <paramref name="channel"/> whose replica <paramref name="perturbReplica"/> may change after each update (tests of the replica check only).</summary>
    internal static Props PropsForTests(Func<FeatureScaling, DataSet> loadData, ChannelSettings channel, Action<long, float[]> perturbReplica) =>
        Akka.Actor.Props.Create(() => new GradientWorker(ActorRefs.Nobody, loadData, 1, long.MaxValue, null, null, channel, perturbReplica));

    /// <summary>The number of threads each gradient computation may use.</summary>
    public int Threads => _threads;

    /// <inheritdoc/>
    public IStash Stash { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PreStart()
    {
        if (_channelSettings is not null)
        {
            var log = _log;
            _channel = TensorChannel.Open(_channelSettings, new ActorInbox(Self), message => log.Warning(message));
            _log.Info("tensor channel listening at {0}", _channel.Endpoint);
        }
        if (!_coordinator.IsNobody()) _coordinator.Tell(RegisterWorker.Instance);
    }

    /// <inheritdoc/>
    protected override void PostStop()
    {
        _channel?.Dispose();
        _weights?.Release();
        _refused.LogSummary("stopped");
    }

    /// <summary>Handles <typeparamref name="T"/> when it comes from this worker's coordinator (<see cref="FromCoordinator"/>); else <paramref name="refused"/>.</summary>
    private void ReceiveFromCoordinator<T>(Action<T> handle, Action<T>? refused = null) => Receive<T>(message =>
    {
        if (FromCoordinator(message!)) handle(message);
        else refused?.Invoke(message);
    });

    /// <summary>
    /// Whether the message comes from this worker's coordinator: in the coordinator's process the actor
    /// it was given; on a worker node the coordinator actor (/user/coordinator) of an Up (or leaving)
    /// cluster member with role "coordinator" (from membership, not from the address the node was told
    /// to join, which may be spelled differently); during a run, only the run's own coordinator.
    /// Anything else is refused and counted.
    /// </summary>
    private bool FromCoordinator(object message)
    {
        var sender = Sender;
        string? why = null;
        if (!_coordinator.IsNobody())
        {
            if (!sender.Equals(_coordinator)) why = $"this worker takes orders from {_coordinator.Path} only";
        }
        else if (!IsClusterCoordinator(sender))
        {
            why = "not the coordinator actor of a cluster member with role coordinator";
        }
        if (why is null && _runId is not null && message is not SetupRun && !sender.Equals(_runOwner))
            why = $"not the coordinator of run {_runId} ({_runOwner.Path})";
        if (why is null) return true;
        _refused.Refuse(message, sender, why);
        return false;
    }

    private static bool IsClusterCoordinator(IActorRef sender) =>
        sender.Path.Elements.SequenceEqual(["user", WorkerNode.CoordinatorActorName])
        && ((ExtendedActorSystem)Context.System).Provider is Akka.Cluster.ClusterActorRefProvider
        && Cluster.Get(Context.System).State.Members.Any(m =>
            m.Address.Equals(sender.Path.Address) && m.HasRole(Clustering.NodeSettings.CoordinatorRole) && m.Status is MemberStatus.Up or MemberStatus.Leaving);

    /// <summary>A worker in a run refuses another run while its run's coordinator is still there (in the coordinator's process: always).</summary>
    private bool NotInAnotherRun(SetupRun setup)
    {
        if (_runId is null || setup.RunId == _runId) return true;
        if (_coordinator.IsNobody() && !IsClusterCoordinator(_runOwner)) return true; // that coordinator has gone
        _refused.Refuse(setup, Sender, $"this worker is in run {_runId} of {_runOwner.Path}, which has not finished");
        Sender.Tell(new SetupRefused(setup.RunId, $"this worker is in another run ({_runId})"));
        return false;
    }

    private void HandleSetup(SetupRun setup)
    {
        DataSet data;
        try
        {
            data = _loadData(setup.ToFeatureScaling());
        }
        catch (InvalidInputException e)
        {
            Refuse(setup, $"the worker cannot load its data: {e.Message}");
            return;
        }
        if (data.Count != setup.TrainCount || data.ContentHash != setup.DataHash)
        {
            Refuse(setup, $"data mismatch: this worker holds {data.Name} ({data.Count} samples, sha256 {data.ContentHash}), the coordinator trains on {setup.TrainCount} samples with sha256 {setup.DataHash}");
            return;
        }
        Architecture architecture;
        try
        {
            architecture = setup.ToArchitecture();
        }
        catch (ArgumentException e)
        {
            Refuse(setup, $"invalid architecture: {e.Message}");
            return;
        }
        if (architecture.InputSize != data.FeatureCount)
        {
            Refuse(setup, $"the network takes {architecture.InputSize} inputs but the data has {data.FeatureCount} features");
            return;
        }
        var frame = Clustering.NodeSettings.FrameBytesFor(architecture.ParameterCount);
        if (setup.TensorEndpoint is null && frame > _maximumFrameBytes)
        {
            Refuse(setup, $"the model's {architecture.ParameterCount:N0} parameters need messages of {frame:N0} bytes, more than this worker's maximum frame of {_maximumFrameBytes:N0} bytes (start it with --max-frame-size {frame})");
            return;
        }

        if (_engine is null || !_engine.Architecture.Equals(architecture) || _engine.ChunkSize != setup.ChunkSize)
        {
            _engine = new BatchEngine(architecture, setup.ChunkSize, _threads);
            _sum = new GradientSum(architecture.ParameterCount);
        }
        if (setup.TensorEndpoint is not null && (_channel is null || !Guid.TryParseExact(setup.RunId, "N", out _runGuid)))
        {
            Refuse(setup, _channel is null ? "this worker has no tensor channel" : $"the run id '{setup.RunId}' is not a GUID");
            return;
        }
        if (_channel is not null) _channel.MaximumValues = architecture.ParameterCount;
        _setup = setup;
        if (SetUpReplica(setup) is { } problem)
        {
            _setup = null;
            Refuse(setup, problem);
            return;
        }
        _runId = setup.RunId;
        _runOwner = Sender;
        _data = data;
        ReplaceWeights(null, -1);
        _orderEpoch = -1;
        Stash.ClearStash();
        _log.Info("joined run {0}: {1}, {2} samples", setup.RunId, architecture, data.Count);
        Sender.Tell(new SetupAccepted(setup.RunId, _channel?.Endpoint));
    }

    private void Refuse(SetupRun setup, string reason)
    {
        _log.Error("refusing run {0}: {1}", setup.RunId, reason);
        Sender.Tell(new SetupRefused(setup.RunId, reason));
        _onRefused?.Invoke(reason);
    }

    private void HandleWeights(WeightsUpdate update)
    {
        if (update.RunId != _runId)
        {
            _log.Warning("ignoring weights for run {0}: this worker is set up for {1}", update.RunId, _runId ?? "no run");
            update.Parameters.Release();
            return;
        }
        if (update.Parameters.Length != _engine!.Architecture.ParameterCount)
        {
            _log.Error("ignoring weights version {0}: {1} values for a network of {2}", update.Version, update.Parameters.Length, _engine.Architecture.ParameterCount);
            update.Parameters.Release();
            return;
        }
        ReplaceWeights(update.Parameters, update.Version); // immutable: kept by reference, never written
        Stash.UnstashAll();
    }

    private void ReplaceWeights(FloatTensor? weights, long version)
    {
        _weights?.Release();
        (_weights, _version) = (weights, version);
    }

    /// <summary>A frame from the tensor channel: the weights from this run's coordinator, and nothing else.</summary>
    private void HandleFrame(TensorArrived frame)
    {
        var header = frame.Header;
        var setup = _setup;
        if (AllReduce && header.Run == _runGuid && header.Kind is FrameKind.Part or FrameKind.Sum or FrameKind.State)
        {
            HandleReduceFrame(frame);
            return;
        }
        if (setup?.TensorEndpoint is null || frame.Peer != setup.TensorEndpoint || header.Run != _runGuid || header.Kind != FrameKind.Weights || AllReduce)
        {
            _log.Warning("tensor channel: dropping a {0} frame of step {1} from {2}: this worker takes weights from {3} only",
                header.Kind, header.Step, frame.Peer, setup?.TensorEndpoint ?? "no coordinator yet");
            _channel!.Pool.Return(frame.Payload);
            return;
        }
        HandleWeights(new WeightsUpdate(setup.RunId, header.Version, FloatTensor.Pooled(frame.Payload, _channel!.Pool.Return)));
    }

    private void HandleCompute(ComputeGradient request)
    {
        if (request.RunId != _runId)
        {
            _log.Warning("ignoring work for run {0}: this worker is set up for {1}", request.RunId, _runId ?? "no run");
            return;
        }
        if (AllReduce)
        {
            HandleComputeAllReduce(request);
            return;
        }
        if (request.Version > _version)
        {
            Stash.Stash(); // its weights are on their way
            return;
        }
        if (request.Version != _version || _weights is null)
        {
            _log.Warning("step {0}: asked for weights version {1} but holding {2}; asking for them", request.Step, request.Version, _version);
            Sender.Tell(new VersionMismatch(request.RunId, request.Step, request.NodeStart, request.NodeSize, request.Version, _version));
            return;
        }
        if (!RequestInRange(request)) return;
        var setup = _setup!;

        var channel = setup.TensorEndpoint is null ? null : _channel;
        var sum = channel is null ? _sum! : TakeSpareSum(_engine!.Architecture.ParameterCount);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        _fault?.BeforeCompute(request.Step);
        _engine!.Gradient(_weights.Span, _data!, _order.AsSpan(request.SampleStart, request.SampleCount), sum);
        _fault?.AfterCompute(request.Step, sum);
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (channel is null)
        {
            Sender.Tell(new GradientComputed(
                request.RunId, request.Step, request.Version, request.NodeStart, request.NodeSize,
                sum.SampleCount, sum.LossSum, sum.CorrectCount, FloatTensor.CopyOf(sum.Values), seconds));
            return;
        }
        // Straight from the sum's array onto the connection; the array is reused once it is written.
        var header = new FrameHeader(FrameKind.NodeSum, _runGuid, request.Step, request.Version, request.NodeStart, request.NodeSize,
            sum.SampleCount, sum.CorrectCount, sum.LossSum, seconds, sum.Values.Length);
        channel.Send(setup.TensorEndpoint!, header, sum.Values, () => _spareSums.Add(sum));
    }

    /// <summary>Whether the request's samples lie in the training set; the epoch's order is ready when they do.</summary>
    private bool RequestInRange(ComputeGradient request)
    {
        var setup = _setup!;
        if (request.SampleStart < 0 || request.SampleCount < 1 || request.SampleStart > setup.TrainCount - request.SampleCount || request.Epoch < 0)
        {
            _log.Error("step {0}: ignoring a request for samples [{1}, +{2}) of epoch {3} outside the {4} training samples", request.Step, request.SampleStart, request.SampleCount, request.Epoch, setup.TrainCount);
            return false;
        }
        if (request.Epoch != _orderEpoch)
        {
            _order = Shuffling.Permutation(setup.TrainCount, setup.Seed, request.Epoch);
            _orderEpoch = request.Epoch;
        }
        _log.Debug("step {0}: computing chunks [{1}, {2})", request.Step, request.NodeStart, request.NodeStart + request.NodeSize);
        return true;
    }

    /// <summary>A written sum to reuse, or a new one; sums of an earlier run's network (another size) are dropped.</summary>
    private GradientSum TakeSpareSum(int parameterCount)
    {
        while (_spareSums.TryTake(out var spare))
        {
            if (spare.Values.Length == parameterCount) return spare;
        }
        return new GradientSum(parameterCount);
    }

    private void HandleRunFinished(RunFinished finished)
    {
        if (finished.RunId != _runId) return;
        _log.Info("run {0} finished", finished.RunId);
        _runId = null;
        ReplaceWeights(null, -1);
        _data = null;
        Stash.ClearStash();
        ReleaseStep();
        _replica = null;
        _runOwner = ActorRefs.Nobody;
        _refused.LogSummary($"run {finished.RunId} over");
        _onRunFinished?.Invoke();
    }
}
