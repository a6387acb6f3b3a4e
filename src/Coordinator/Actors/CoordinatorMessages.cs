using System.Collections.Immutable;
using Backprop.Protocol;
using Backprop.Coordinator.Training;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

// What the coordinator's own actors tell each other, and what the coordinator reports to its
// listener. None of these crosses the network (the wire protocol is Backprop.Protocol's
// Messages.cs), so none is ever serialized, even under serialize-messages = on; some hand over
// objects (a pooled sum) by reference on purpose.
//
//   WorkerRoster ──WorkerReady / WorkerLost──> TrainingCoordinator ──(forwarded)──> StepGather
//   TrainingCoordinator ──TensorLinkLost, RunOver──> WorkerRoster
//   StepGather ──StepGathered / StepAllReduced / StepFailed, WorkerFaulted──> TrainingCoordinator
//   TrainingCoordinator ──QuarantineWorker──> WorkerRoster
//   TrainingCoordinator ──EpochCompleted, TrainingPaused, TrainingFinished / TrainingFailed──> listener
//   whoever drives the run, in the coordinator's process ──PauseTraining / ResumeTraining──> TrainingCoordinator

/// <summary>What the roster reports: a worker's change, and every ready worker after it, in the order they became ready.</summary>
internal interface IRosterNews : INoSerializationVerificationNeeded
{
    IActorRef Worker { get; }
    ImmutableList<IActorRef> Ready { get; }
}

/// <summary>From the roster: <paramref name="Worker"/> is set up and may be given work; its tensor channel is at <paramref name="TensorEndpoint"/> (null: in this process).</summary>
internal sealed record WorkerReady(IActorRef Worker, ImmutableList<IActorRef> Ready, string? TensorEndpoint = null) : IRosterNews;

/// <summary>From the roster: <paramref name="Worker"/>, which was ready, must not be given work any more (it stopped, left, or its connection dropped).</summary>
internal sealed record WorkerLost(IActorRef Worker, ImmutableList<IActorRef> Ready) : IRosterNews;

/// <summary>To the roster: the tensor channel to or from <paramref name="Worker"/> failed; set it aside as if its node's connection had dropped.</summary>
internal sealed record TensorLinkLost(IActorRef Worker, string Reason) : INoSerializationVerificationNeeded;

/// <summary>To the roster: the run is over; tell every worker, and every worker that turns up from now on.</summary>
internal sealed class RunOver : INoSerializationVerificationNeeded
{
    public static readonly RunOver Instance = new();
    private RunOver() { }
}

/// <summary>
/// From a step's gather: every node is in and added along the chunk tree into <paramref name="Sum"/>.
/// <paramref name="Pool"/> is the pool of sums the gather was lent, handed back with the sums it used.
/// </summary>
internal sealed record StepGathered(long Step, GradientSum Sum, GradientSumPool Pool, double StepSeconds, double SlowestComputeSeconds, double ReduceSeconds)
    : INoSerializationVerificationNeeded
{
    /// <summary>Workers whose results the step used, none of them late or wrong.</summary>
    public IReadOnlyCollection<IActorRef> Delivered { get; init; } = [];
}

/// <summary>
/// From an all-reduce step's gather: every node is in and every participant holds the step's sum
/// (and applies it before the next step). The batch's totals, added along the chunk tree, and the
/// workers that now hold the next version's replica.
/// </summary>
internal sealed record StepAllReduced(long Step, int SampleCount, double LossSum, int CorrectCount, ImmutableList<IActorRef> Participants,
    double StepSeconds, double SlowestComputeSeconds) : INoSerializationVerificationNeeded
{
    /// <summary>Workers whose results the step used, none of them late or wrong.</summary>
    public IReadOnlyCollection<IActorRef> Delivered { get; init; } = [];
}

/// <summary>
/// From a step's gather: <paramref name="Worker"/> failed at its share of the step. A missed deadline
/// or a rejected result is a strike; with <paramref name="Proven"/> its result was shown wrong (another
/// two workers computed other bits), and it is set aside at once.
/// </summary>
internal sealed record WorkerFaulted(IActorRef Worker, string Reason, bool Proven) : INoSerializationVerificationNeeded;

/// <summary>To the roster: <paramref name="Worker"/> gets no more work in this run.</summary>
internal sealed record QuarantineWorker(IActorRef Worker, string Reason) : INoSerializationVerificationNeeded;

/// <summary>From a step's gather: a node could not be computed (every attempt failed).</summary>
internal sealed record StepFailed(long Step, string Reason) : INoSerializationVerificationNeeded;

/// <summary>To the coordinator's listener: an epoch ended.</summary>
public sealed record EpochCompleted(EpochReport Report) : INoSerializationVerificationNeeded;

/// <summary>To the coordinator's listener: the run paused after <paramref name="Version"/> updates.</summary>
public sealed record TrainingPaused(long Version) : INoSerializationVerificationNeeded;

/// <summary>To the coordinator's listener: every epoch is done; the final weights.</summary>
public sealed record TrainingFinished(long Version, FloatTensor Parameters, EpochReport? LastEpoch) : INoSerializationVerificationNeeded;

/// <summary>To the coordinator's listener: the run cannot go on.</summary>
public sealed record TrainingFailed(string Reason) : INoSerializationVerificationNeeded;

/// <summary>
/// Asks the coordinator to stop after the current step until <see cref="ResumeTraining"/>, or until
/// <see cref="CoordinatorSettings.PauseLimit"/> has passed. Local only: no serializer carries it, so
/// the network cannot pause a run.
/// </summary>
public sealed class PauseTraining : INoSerializationVerificationNeeded
{
    /// <summary>The one instance.</summary>
    public static readonly PauseTraining Instance = new();
    private PauseTraining() { }
}

/// <summary>Continues a paused run. Local only, like <see cref="PauseTraining"/>.</summary>
public sealed class ResumeTraining : INoSerializationVerificationNeeded
{
    /// <summary>The one instance.</summary>
    public static readonly ResumeTraining Instance = new();
    private ResumeTraining() { }
}
