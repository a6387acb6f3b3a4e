using System.Collections.Immutable;
using Akka.Actor;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

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

/// <summary>
/// A message that holds a whole tensor (weights, a gradient sum): passed by reference inside a
/// process, a frame of the tensor channel between processes, never through Akka.Remote. It is
/// bound to <see cref="ProtocolSerializer"/>, which refuses it, so that one sent through Akka by
/// mistake fails loudly instead of falling to a default serializer.
/// </summary>
public interface ILocalTensorMessage : INoSerializationVerificationNeeded;

/// <summary>A small control message: it travels through Hyperion, limited to the protocol's own types.</summary>
public interface IControlMessage;

/// <summary>How a step's gradient sums are added up.</summary>
public enum ReduceMode
{
    /// <summary>Every worker sends its node sums to the coordinator, which adds them, updates the weights and sends them out.</summary>
    Star = 0,
    /// <summary>
    /// The parameter vector is cut into segments dealt out among the workers; each segment's owner adds that
    /// segment of every node sum and sends the result to every worker, and every worker applies the
    /// same update to its own replica. The coordinator moves no tensors.
    /// </summary>
    AllReduce = 1,
}

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
/// <param name="Reduce">How the step's sums are added: by the coordinator (star) or by the workers among themselves (all-reduce, each applying the update to its replica).</param>
/// <param name="Optimizer">The update rule the workers apply in all-reduce mode.</param>
/// <param name="StateCheckEvery">In all-reduce mode, every this many steps each worker reports a hash of its weights and optimizer state.</param>
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
    string? TensorEndpoint = null,
    ReduceMode Reduce = ReduceMode.Star,
    OptimizerSettings? Optimizer = null,
    int StateCheckEvery = 0) : ITensorMessage
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
public sealed record WeightsUpdate(string RunId, long Version, FloatTensor Parameters) : ILocalTensorMessage;

/// <summary>
/// Compute the summed gradient of one node of the chunk tree: samples
/// [SampleStart, SampleStart + SampleCount) of epoch <see cref="Epoch"/>'s order, which are chunks
/// [NodeStart, NodeStart + NodeSize) of the step's batch.
/// </summary>
/// <remarks>
/// All-reduce, with <see cref="Verify"/>: compute the node, which another worker computed already,
/// and answer only with <see cref="PartHashes"/> of its segments (nothing is sent to their owners),
/// so that the coordinator can compare them with what the owners received.
/// </remarks>
public sealed record ComputeGradient(string RunId, long Step, long Version, int Epoch, int SampleStart, int SampleCount, int NodeStart, int NodeSize,
    bool Verify = false) : IControlMessage;

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
    int SampleCount, double LossSum, int CorrectCount, FloatTensor Sum, double ComputeSeconds = 0) : ILocalTensorMessage;

/// <summary>The worker does not hold the version a request names; it computed nothing.</summary>
public sealed record VersionMismatch(string RunId, long Step, int NodeStart, int NodeSize, long RequestedVersion, long HeldVersion) : IControlMessage;

/// <summary>
/// All-reduce: how step <see cref="Step"/> is laid out, sent to every participant before its work
/// (and again, with a higher <see cref="Revision"/>, when a participant is lost). The batch's chunk
/// tree nodes are (<see cref="NodeStarts"/>[i], <see cref="NodeSizes"/>[i]); the parameter vector
/// is cut into <see cref="SegmentOwners"/>.Length segments, segment s being owned by
/// <see cref="Participants"/>[<see cref="SegmentOwners"/>[s]] (tensor endpoints). Workers in
/// <see cref="AwaitingState"/> are sent the weights and optimizer state of version
/// <see cref="Step"/> by a peer before they compute.
/// </summary>
/// <remarks>
/// A layout of a higher <see cref="Round"/> starts the step over: every node sum, part and sum of the
/// earlier round is dropped (its frames carry their round), and the nodes are computed again. The
/// coordinator does this when a participant was shown to send wrong parts.
/// </remarks>
public sealed record StepLayout(
    string RunId, long Step, int Revision, int SampleCount, int ChunkCount,
    int[] NodeStarts, int[] NodeSizes, string[] Participants, int[] SegmentOwners, string[] AwaitingState, int Round = 0) : IControlMessage
{
    /// <summary>Segment s of a vector of <paramref name="length"/> values cut into <paramref name="count"/> segments: [start, start + length).</summary>
    public static (int Start, int Length) Segment(int s, int count, int length)
    {
        int start = (int)((long)s * length / count), end = (int)((long)(s + 1) * length / count);
        return (start, end - start);
    }
}

/// <summary>All-reduce: the worker computed a node and sent its segments to their owners; the node's count, loss and correct count.</summary>
public sealed record NodeComputed(string RunId, long Step, int NodeStart, int NodeSize, int SampleCount, double LossSum, int CorrectCount, double ComputeSeconds,
    int Round = 0) : IControlMessage;

/// <summary>
/// All-reduce verification: ask every participant for <see cref="PartHashes"/> of the parts of node
/// (<see cref="NodeStart"/>, <see cref="NodeSize"/>) it received for the segments it owns.
/// </summary>
public sealed record HashParts(string RunId, long Step, int Round, int NodeStart, int NodeSize) : IControlMessage;

/// <summary>
/// All-reduce verification: XxHash3 of segments <see cref="Segments"/> of a node's gradient sum. With
/// <see cref="Computed"/>, of the worker's own computation of the node (the answer to a
/// <see cref="ComputeGradient"/> with Verify, every segment, with the node's count, cost and correct
/// count); without, of the parts its owner received (the answer to <see cref="HashParts"/>).
/// </summary>
public sealed record PartHashes(string RunId, long Step, int Round, int NodeStart, int NodeSize, bool Computed, int[] Segments, ulong[] Hashes,
    int SampleCount = 0, double LossSum = 0, int CorrectCount = 0) : IControlMessage;

/// <summary>
/// All-reduce: the worker holds every segment of step <see cref="Step"/>'s summed gradient (and will
/// apply it before the next step). Every so often it adds a hash of the weights and optimizer state
/// it computed the step with, so that the coordinator can check that the replicas agree.
/// </summary>
public sealed record StepReduced(string RunId, long Step, bool HasStateHash, ulong StateHash, int Round = 0) : IControlMessage;

/// <summary>
/// All-reduce: send the weights of version <see cref="Version"/> (and, with <see cref="WithOptimizer"/>,
/// the optimizer's state) to the tensor endpoint <see cref="Endpoint"/>: a joining worker, or the
/// coordinator when it evaluates or saves.
/// </summary>
public sealed record SendState(string RunId, long Version, string Endpoint, bool WithOptimizer) : IControlMessage;

/// <summary>All-reduce: the worker cannot take part in step <see cref="Step"/>: it holds version <see cref="HeldVersion"/> and needs the state of the step's version.</summary>
public sealed record NeedState(string RunId, long Step, long HeldVersion) : IControlMessage;

/// <summary>The run is over; the worker may drop its state.</summary>
public sealed record RunFinished(string RunId) : IControlMessage;
