using System.Collections.Immutable;
using Akka.Actor;
using Backprop.Data;
using Backprop.Networks;

namespace Backprop.Protocol;

// The whole protocol between the coordinator, its workers and whoever drives the coordinator.
// (What the coordinator reports to its listener, in its own process, is not on the wire: see
// Backprop.Coordinator.Actors.CoordinatorMessages.)
// Every message is immutable; tensors travel as FloatTensor. Messages of a run carry its RunId,
// and work messages carry the step and the weights version they belong to, so a late answer is
// recognised and dropped.
//
//   coordinator                                  worker
//        |  <- RegisterWorker (local mode)          |
//        |  SetupRun ->                             |   (architecture, data hash, scaling, tensor endpoint)
//        |  <- SetupAccepted / SetupRefused         |   (the worker's tensor endpoint)
//        |  WeightsUpdate(version) =>               |   once per version, before any work on it
//        |  ComputeGradient(step, version, node) -> |   a node = an aligned block of chunks
//        |  <= GradientComputed                     |
//        |  <- VersionMismatch                      |
//        |  RunFinished ->                          |
//
//   -> Akka (control plane);  => the tensor channel between processes (Backprop.Channel), a plain
//   message inside one process.

/// <summary>A control message that carries (small) tensors: it travels through <see cref="ProtocolSerializer"/> (header + raw floats).</summary>
public interface ITensorMessage;

/// <summary>A small control message: it travels through Hyperion, limited to the protocol's own types.</summary>
public interface IControlMessage;

/// <summary>A worker announces itself to the coordinator (local mode; a cluster finds workers by membership).</summary>
public sealed class RegisterWorker : IControlMessage
{
    /// <summary>The one instance.</summary>
    public static readonly RegisterWorker Instance = new();
    private RegisterWorker() { }
}

/// <summary>Tells a worker what it will compute: the network, the chunking, the data it must hold.</summary>
/// <param name="RunId">Names the run; every later message of the run carries it.</param>
/// <param name="LayerSizes">n_0 … n_L.</param>
/// <param name="Hidden">Hidden activation.</param>
/// <param name="Output">Output activation.</param>
/// <param name="Cost">Cost.</param>
/// <param name="ChunkSize">Samples per chunk.</param>
/// <param name="Seed">Seed of the epoch orders.</param>
/// <param name="TrainCount">Samples in the training set.</param>
/// <param name="DataHash">Content hash of the scaled training set the worker must hold.</param>
/// <param name="Scaling">The feature scaling to apply to the worker's raw data.</param>
/// <param name="ScalingShift">Per-feature shift.</param>
/// <param name="ScalingScale">Per-feature factor.</param>
/// <param name="TensorEndpoint">The coordinator's tensor channel (host:port); null when the workers run in its process and tensors travel as messages.</param>
public sealed record SetupRun(
    string RunId,
    ImmutableArray<int> LayerSizes,
    Activation Hidden,
    Activation Output,
    Cost Cost,
    int ChunkSize,
    int Seed,
    int TrainCount,
    string DataHash,
    ScalingKind Scaling,
    FloatTensor ScalingShift,
    FloatTensor ScalingScale,
    string? TensorEndpoint = null) : ITensorMessage
{
    /// <summary>The architecture these fields describe (throws <see cref="ArgumentException"/> if they are invalid).</summary>
    public Architecture ToArchitecture() => new(LayerSizes, Hidden, Output, Cost);

    /// <summary>The feature scaling these fields describe.</summary>
    public FeatureScaling ToFeatureScaling() => new(Scaling, ScalingShift.Span.ToArray(), ScalingScale.Span.ToArray());
}

/// <summary>The worker holds the announced data and is ready for work; its tensor channel (host:port) is at <paramref name="TensorEndpoint"/> (null in the coordinator's process).</summary>
public sealed record SetupAccepted(string RunId, string? TensorEndpoint = null) : IControlMessage;

/// <summary>The worker cannot take part (for example it holds other data); the reason names both hashes.</summary>
public sealed record SetupRefused(string RunId, string Reason) : IControlMessage;

/// <summary>
/// The weights and biases of one version, broadcast once per version: a message to a worker in the
/// coordinator's process, a <see cref="Channel.FrameKind.Weights"/> frame of the tensor channel to
/// any other. Never serialized.
/// </summary>
public sealed record WeightsUpdate(string RunId, long Version, FloatTensor Parameters) : INoSerializationVerificationNeeded;

/// <summary>
/// Compute the summed gradient of one node of the chunk tree: samples
/// [SampleStart, SampleStart + SampleCount) of epoch <see cref="Epoch"/>'s order, which are chunks
/// [NodeStart, NodeStart + NodeSize) of the step's batch.
/// </summary>
public sealed record ComputeGradient(string RunId, long Step, long Version, int Epoch, int SampleStart, int SampleCount, int NodeStart, int NodeSize) : IControlMessage;

/// <summary>
/// The answer to <see cref="ComputeGradient"/>: Σ ∂C/∂θ, Σ C(x) and the correct count over the
/// node's samples, and how long the worker computed (for the step-time breakdown).
/// </summary>
/// <remarks>
/// In the coordinator's process it is a message; from any other it is a
/// <see cref="Channel.FrameKind.NodeSum"/> frame of the tensor channel, which the coordinator turns
/// back into this message. Never serialized.
/// </remarks>
public sealed record GradientComputed(
    string RunId, long Step, long Version, int NodeStart, int NodeSize,
    int SampleCount, double LossSum, int CorrectCount, FloatTensor Sum, double ComputeSeconds = 0) : INoSerializationVerificationNeeded;

/// <summary>The worker does not hold the version a request names; it computed nothing.</summary>
public sealed record VersionMismatch(string RunId, long Step, int NodeStart, int NodeSize, long RequestedVersion, long HeldVersion) : IControlMessage;

/// <summary>The run is over; the worker may drop its state.</summary>
public sealed record RunFinished(string RunId) : IControlMessage;

/// <summary>Asks the coordinator to stop after the current step until <see cref="ResumeTraining"/>.</summary>
public sealed class PauseTraining : IControlMessage
{
    /// <summary>The one instance.</summary>
    public static readonly PauseTraining Instance = new();
    private PauseTraining() { }
}

/// <summary>Continues a paused run.</summary>
public sealed class ResumeTraining : IControlMessage
{
    /// <summary>The one instance.</summary>
    public static readonly ResumeTraining Instance = new();
    private ResumeTraining() { }
}
