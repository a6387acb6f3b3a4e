using Akka.Actor;
using Backprop.Channel;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>
/// One real <see cref="GradientWorker"/> with a tensor channel in an all-reduce run, the test actor
/// standing for its coordinator (with a tensor channel of its own, whose frames come to a probe).
/// The worker is the step's only participant, so it owns every segment and adds the sum itself.
/// Every message is serialized (serialize-messages = on).
/// </summary>
/// <remarks>Kept here while tests/Backprop.Runtime.Tests is being reworked.</remarks>
public sealed class GradientWorkerAllReduceSpecs : Akka.TestKit.Xunit2.TestKit
{
    // Momentum, so that the state frames carry an optimizer state array and the update depends on it.
    private static readonly TrainingSettings Settings = TinyRun.Settings with { Optimizer = new OptimizerSettings(OptimizerKind.Momentum, 0.1f, 0.9f) };
    private static readonly List<float[]> Oracle = TinyRun.OracleVersions(Settings);

    private readonly Guid _run = Guid.NewGuid();
    private readonly TrainingRun _trainingRun = TinyRun.NewRun(Settings);
    private readonly Akka.TestKit.TestProbe _frames;
    private readonly TensorChannel _channel;

    public GradientWorkerAllReduceSpecs() : base(SpecConfig.Serialized)
    {
        _frames = CreateTestProbe("coordinator-channel");
        _channel = TensorChannel.Open(new ChannelSettings(), new ActorInbox(_frames.Ref), _ => { });
        _channel.MaximumValues = 16 * TinyRun.Architecture.ParameterCount;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _channel.Dispose();
        base.Dispose(disposing);
    }

    private string RunId => _run.ToString("N");
    private static int ParameterCount => TinyRun.Architecture.ParameterCount;
    private int StateArrays => _trainingRun.OptimizerState.Arrays.Count;

    private SetupRun Setup(int stateCheckEvery = 1)
    {
        var run = _trainingRun;
        var architecture = run.Settings.Architecture;
        return new SetupRun(RunId, [.. architecture.Sizes], architecture.Hidden, architecture.Output, architecture.Cost,
            run.Settings.ChunkSize, run.Settings.Seed, run.Train.Count, run.Train.ContentHash,
            run.Scaling.Kind, FloatTensor.CopyOf(run.Scaling.Shift), FloatTensor.CopyOf(run.Scaling.Scale), _channel.Endpoint,
            ReduceMode.AllReduce, run.Settings.Optimizer, stateCheckEvery);
    }

    /// <summary>A worker set up for the all-reduce run; returns it and its tensor endpoint.</summary>
    private (IActorRef Worker, string Endpoint) StartWorker()
    {
        var train = _trainingRun.Train;
        var worker = Sys.ActorOf(GradientWorker.Props(TestActor, _ => train, threads: 1, channel: new ChannelSettings()), "worker");
        ExpectMsg<RegisterWorker>(); // a worker given its coordinator announces itself, and takes orders from it only
        worker.Tell(Setup());
        var accepted = ExpectMsg<SetupAccepted>();
        Assert.Equal(RunId, accepted.RunId);
        Assert.NotNull(accepted.TensorEndpoint);
        return (worker, accepted.TensorEndpoint);
    }

    /// <summary>The coordinator's weights and (zero) optimizer state before the first step, as a State frame, over the channel.</summary>
    private void SendInitialState(string endpoint)
    {
        var packed = new float[ParameterCount * (1 + StateArrays)];
        _trainingRun.Parameters.CopyTo(packed, 0);
        Assert.Equal(Oracle[0], _trainingRun.Parameters);
        _channel.Send(endpoint, new FrameHeader(FrameKind.State, _run, 0, 0, Segment: StateArrays), FloatTensor.TakeOwnership(packed));
    }

    /// <summary>Step <paramref name="step"/> with the worker as its only participant: one node, the root, of the step's 8 samples.</summary>
    private StepLayout Layout(long step, string endpoint, bool awaitingState) =>
        new(RunId, step, 0, SampleCount: 8, ChunkCount: 4, [0], [4], [endpoint], [0], awaitingState ? [endpoint] : []);

    private ComputeGradient Request(long step) => new(RunId, step, step, 0, SampleStart: (int)step * 8, SampleCount: 8, NodeStart: 0, NodeSize: 4);

    /// <summary>The node's totals match what a correct worker computes on <paramref name="weights"/>, bit for bit.</summary>
    private static void AssertTotals(ComputeGradient request, float[] weights, NodeComputed computed)
    {
        var expected = TinyRun.Answer(request, FloatTensor.CopyOf(weights));
        Assert.Equal((request.Step, request.NodeStart, request.NodeSize), (computed.Step, computed.NodeStart, computed.NodeSize));
        Assert.Equal((expected.SampleCount, expected.CorrectCount), (computed.SampleCount, computed.CorrectCount));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.LossSum), BitConverter.DoubleToInt64Bits(computed.LossSum));
    }

    /// <summary>
    /// The worker's two answers to its request. Their order is not fixed: as the only participant it
    /// owns every segment, so it holds the step's sum (StepReduced) as soon as its node is computed,
    /// before it answers NodeComputed.
    /// </summary>
    private (NodeComputed Computed, StepReduced Reduced) Answers()
    {
        var answers = ReceiveN(2);
        return (Assert.Single(answers.OfType<NodeComputed>()), Assert.Single(answers.OfType<StepReduced>()));
    }

    [Fact]
    public void AllReduce_Worker_WithTheInitialState_ComputesItsNode_AndReportsTheStepReduced()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true));
        var request = Request(0);
        worker.Tell(request);

        var (computed, reduced) = Answers();
        AssertTotals(request, Oracle[0], computed);
        Assert.Equal((RunId, 0L), (reduced.RunId, reduced.Step));
        Assert.True(reduced.HasStateHash); // StateCheckEvery = 1: the state it computed with (version 0) is hashed
    }

    [Fact]
    public void AllReduce_Worker_AppliesTheStepWhenTheNextLayoutComes_ComputingOnTheOraclesWeights()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        for (var step = 0; step < 3; step++)
        {
            worker.Tell(Layout(step, endpoint, awaitingState: step == 0));
            var request = Request(step);
            worker.Tell(request);
            var (computed, reduced) = Answers();
            AssertTotals(request, Oracle[step], computed);
            Assert.Equal(step, reduced.Step);
        }
        ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // no NeedState: it held every version it was asked for
    }

    [Fact]
    public void AllReduce_Worker_SendState_SendsTheUpdatedWeightsAndOptimizerState()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true));
        worker.Tell(Request(0));
        Answers();

        worker.Tell(new SendState(RunId, Version: 1, _channel.Endpoint, WithOptimizer: true));

        var frame = _frames.ExpectMsg<TensorArrived>();
        Assert.Equal((FrameKind.State, 1L, 1L, StateArrays), (frame.Header.Kind, frame.Header.Step, frame.Header.Version, frame.Header.Segment));
        Assert.Equal(ParameterCount * (1 + StateArrays), frame.Header.Count);
        Assert.Equal(endpoint, frame.Peer);
        Assert.Equal(Oracle[1], frame.Payload.AsSpan(0, ParameterCount).ToArray()); // bitwise
        Assert.Contains(frame.Payload.AsSpan(ParameterCount, ParameterCount).ToArray(), v => v != 0); // the momentum moved
    }

    /// <summary>
    /// The gather's restart at the first step (every participant lost, the coordinator still holding
    /// version 0): a worker that was lost after it reported StepReduced and comes back (the roster
    /// resumes a suspended worker without a new setup) is a participant again, in a new revision, and
    /// the gather waits for its StepReduced again (see StepGatherAllReduceSpecs). The worker answers
    /// NodeComputed from the node sums it holds and reports the step again.
    /// </summary>
    [Fact]
    public void AllReduce_Worker_ReaddedToAStepItReduced_ReportsTheStepAgain()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true));
        worker.Tell(Request(0));
        Answers();

        // Lost (its StepReduced with it) and back, in the same step: revision 1, the state again, its node again.
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true) with { Revision = 1 });
        var request = Request(0);
        worker.Tell(request);
        var (computed, reduced) = Answers();
        AssertTotals(request, Oracle[0], computed);
        Assert.Equal(0, reduced.Step);
    }

    [Fact]
    public void AllReduce_Worker_LayoutForAVersionItDoesNotHold_AsksForTheState()
    {
        var (worker, endpoint) = StartWorker();
        worker.Tell(Layout(0, endpoint, awaitingState: false));
        var need = ExpectMsg<NeedState>();
        Assert.Equal((RunId, 0L, -1L), (need.RunId, need.Step, need.HeldVersion));
    }

    // ---- Verification ---------------------------------------------------------------------------

    [Fact]
    public void AllReduce_Worker_HashesThePartsItReceived_AndAVerifyRequestComputesTheSameHashes_WithoutSendingParts()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true));
        var request = Request(0);
        worker.Tell(request);
        var (computed, _) = Answers();

        // As the owner of the only segment: the hash of the part it holds, which is the node's whole sum.
        worker.Tell(new HashParts(RunId, 0, 0, 0, 4));
        var received = ExpectMsg<PartHashes>();
        var expected = TinyRun.Answer(request, FloatTensor.CopyOf(Oracle[0]));
        var hash = System.IO.Hashing.XxHash3.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.Sum.Span));
        Assert.Equal((0L, 0, 0, 4, false), (received.Step, received.Round, received.NodeStart, received.NodeSize, received.Computed));
        Assert.Equal([0], received.Segments);
        Assert.Equal([hash], received.Hashes);

        // Asked to verify the node: computed again, hashed, and nothing sent over the channel.
        worker.Tell(request with { Verify = true });
        var again = ExpectMsg<PartHashes>();
        Assert.True(again.Computed);
        Assert.Equal([0], again.Segments);
        Assert.Equal([hash], again.Hashes);
        Assert.Equal((computed.SampleCount, computed.CorrectCount), (again.SampleCount, again.CorrectCount));
        Assert.Equal(BitConverter.DoubleToInt64Bits(computed.LossSum), BitConverter.DoubleToInt64Bits(again.LossSum));
        _frames.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void AllReduce_Worker_LayoutOfALaterRound_StartsTheStepOver_AndAnEarlierRoundIsIgnored()
    {
        var (worker, endpoint) = StartWorker();
        SendInitialState(endpoint);
        worker.Tell(Layout(0, endpoint, awaitingState: true));
        worker.Tell(Request(0));
        Answers();

        // Round 1: everything of round 0 is dropped, the node is computed again and reported with its round.
        worker.Tell(Layout(0, endpoint, awaitingState: false) with { Revision = 1, Round = 1 });
        var request = Request(0);
        worker.Tell(request);
        var (computed, reduced) = Answers();
        AssertTotals(request, Oracle[0], computed);
        Assert.Equal((1, 1), (computed.Round, reduced.Round));

        // A layout of round 0 that comes late changes nothing.
        worker.Tell(Layout(0, endpoint, awaitingState: false) with { Revision = 2 });
        worker.Tell(new HashParts(RunId, 0, 0, 0, 4));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        worker.Tell(new HashParts(RunId, 0, 1, 0, 4));
        Assert.Equal(1, ExpectMsg<PartHashes>().Round);
    }
}
