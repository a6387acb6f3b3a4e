using Akka.Actor;
using Akka.Event;
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
/// A request names the weights version it is for. Weights and requests come from the same
/// coordinator, and Akka keeps the order of messages between two actors, so the version a request
/// names has always arrived first. Should it not be the one held (a lost broadcast, a restart),
/// the worker computes nothing and answers <see cref="VersionMismatch"/>; the coordinator sends the
/// weights again and repeats the request.
/// </remarks>
public sealed class GradientWorker : ReceiveActor
{
    private readonly IActorRef _coordinator;
    private readonly Func<FeatureScaling, DataSet> _loadData;
    private readonly int _threads;
    private readonly long _maximumFrameBytes;
    private readonly Action? _onRunFinished;
    private readonly Action<string>? _onRefused;
    private readonly ILoggingAdapter _log = Context.GetLogger();

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
    public GradientWorker(IActorRef coordinator, Func<FeatureScaling, DataSet> loadData, int threads, long maximumFrameBytes, Action? onRunFinished, Action<string>? onRefused)
    {
        _onRefused = onRefused;
        _coordinator = coordinator;
        _loadData = loadData;
        _threads = Math.Max(1, threads);
        _maximumFrameBytes = maximumFrameBytes;
        _onRunFinished = onRunFinished;
        Receive<SetupRun>(HandleSetup);
        Receive<WeightsUpdate>(HandleWeights);
        Receive<ComputeGradient>(HandleCompute);
        Receive<RunFinished>(HandleRunFinished);
    }

    /// <summary>Props for a worker; give it <see cref="RuntimeConfig.WorkerDispatcher"/> so that it runs on a thread of its own.</summary>
    public static Props Props(IActorRef coordinator, Func<FeatureScaling, DataSet> loadData, int threads,
        long maximumFrameBytes = long.MaxValue, Action? onRunFinished = null, Action<string>? onRefused = null) =>
        Akka.Actor.Props.Create(() => new GradientWorker(coordinator, loadData, threads, maximumFrameBytes, onRunFinished, onRefused));

    /// <summary>The number of threads each gradient computation may use.</summary>
    public int Threads => _threads;

    /// <inheritdoc/>
    protected override void PreStart()
    {
        if (!_coordinator.IsNobody()) _coordinator.Tell(RegisterWorker.Instance);
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
        if (frame > _maximumFrameBytes)
        {
            Refuse(setup, $"the model's {architecture.ParameterCount:N0} parameters need messages of {frame:N0} bytes, more than this worker's maximum frame of {_maximumFrameBytes:N0} bytes (start it with --max-frame-size {frame})");
            return;
        }

        if (_engine is null || !_engine.Architecture.Equals(architecture) || _engine.ChunkSize != setup.ChunkSize)
        {
            _engine = new BatchEngine(architecture, setup.ChunkSize, _threads);
            _sum = new GradientSum(architecture.ParameterCount);
        }
        _runId = setup.RunId;
        _setup = setup;
        _data = data;
        _weights = null;
        _version = -1;
        _orderEpoch = -1;
        _log.Info("joined run {0}: {1}, {2} samples", setup.RunId, architecture, data.Count);
        Sender.Tell(new SetupAccepted(setup.RunId));
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
            return;
        }
        if (update.Parameters.Length != _engine!.Architecture.ParameterCount)
        {
            _log.Error("ignoring weights version {0}: {1} values for a network of {2}", update.Version, update.Parameters.Length, _engine.Architecture.ParameterCount);
            return;
        }
        _weights = update.Parameters; // immutable: kept by reference, never written
        _version = update.Version;
    }

    private void HandleCompute(ComputeGradient request)
    {
        if (request.RunId != _runId)
        {
            _log.Warning("ignoring work for run {0}: this worker is set up for {1}", request.RunId, _runId ?? "no run");
            return;
        }
        if (request.Version != _version || _weights is null)
        {
            _log.Warning("step {0}: asked for weights version {1} but holding {2}; asking for them", request.Step, request.Version, _version);
            Sender.Tell(new VersionMismatch(request.RunId, request.Step, request.NodeStart, request.NodeSize, request.Version, _version));
            return;
        }
        var setup = _setup!;
        if (request.SampleStart < 0 || request.SampleCount < 1 || request.SampleStart > setup.TrainCount - request.SampleCount || request.Epoch < 0)
        {
            _log.Error("step {0}: ignoring a request for samples [{1}, +{2}) of epoch {3} outside the {4} training samples", request.Step, request.SampleStart, request.SampleCount, request.Epoch, setup.TrainCount);
            return;
        }
        if (request.Epoch != _orderEpoch)
        {
            _order = Shuffling.Permutation(setup.TrainCount, setup.Seed, request.Epoch);
            _orderEpoch = request.Epoch;
        }

        _log.Debug("step {0}: computing chunks [{1}, {2})", request.Step, request.NodeStart, request.NodeStart + request.NodeSize);
        var sum = _sum!;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        _engine!.Gradient(_weights.Span, _data!, _order.AsSpan(request.SampleStart, request.SampleCount), sum);
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        Sender.Tell(new GradientComputed(
            request.RunId, request.Step, request.Version, request.NodeStart, request.NodeSize,
            sum.SampleCount, sum.LossSum, sum.CorrectCount,
            setup.HalfPrecisionGradients ? FloatTensor.RoundedToHalf(sum.Values) : FloatTensor.CopyOf(sum.Values), seconds));
    }

    private void HandleRunFinished(RunFinished finished)
    {
        if (finished.RunId != _runId) return;
        _log.Info("run {0} finished", finished.RunId);
        _runId = null;
        _weights = null;
        _data = null;
        _version = -1;
        _onRunFinished?.Invoke();
    }
}
