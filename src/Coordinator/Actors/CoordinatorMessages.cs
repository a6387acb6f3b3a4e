using System.Collections.Immutable;
using Akka.Actor;
using Backprop.Coordinator.Training;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

// What the coordinator's own actors tell each other. None of these crosses the network (the wire
// protocol is Backprop.Protocol's Messages.cs), so none is ever serialized, even under
// serialize-messages = on: they hand over mutable objects (a pooled sum) by reference on purpose.
//
//   WorkerRoster ──WorkerReady / WorkerLost──> TrainingCoordinator ──(forwarded)──> StepGather
//   TrainingCoordinator ──RunOver──> WorkerRoster
//   StepGather ──StepGathered / StepFailed──> TrainingCoordinator

/// <summary>From the roster: <paramref name="Worker"/> is set up and may be given work; <paramref name="Ready"/> is every ready worker, in the order they became ready.</summary>
internal sealed record WorkerReady(IActorRef Worker, ImmutableList<IActorRef> Ready) : INoSerializationVerificationNeeded;

/// <summary>From the roster: <paramref name="Worker"/>, which was ready, must not be given work any more (it stopped, left, or its connection dropped).</summary>
internal sealed record WorkerLost(IActorRef Worker, ImmutableList<IActorRef> Ready) : INoSerializationVerificationNeeded;

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
    : INoSerializationVerificationNeeded;

/// <summary>From a step's gather: a node could not be computed (every attempt failed).</summary>
internal sealed record StepFailed(long Step, string Reason) : INoSerializationVerificationNeeded;
