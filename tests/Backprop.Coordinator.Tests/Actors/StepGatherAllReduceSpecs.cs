using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit;
using Backprop.Channel;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Training;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>
/// The gather of an all-reduce step (<see cref="StepGather"/> with an <see cref="AllReducePlan"/>),
/// a child of the test actor (which stands for the coordinator) against TestProbe workers. Every
/// message is serialized (serialize-messages = on).
/// </summary>
/// <remarks>
/// Step 2 of TinyRun: samples [16, 24) of epoch 0, four chunks of two. With three workers the nodes
/// are (0, 1), (1, 1) and (2, 2); with two, (0, 2) and (2, 2). The workers' answers are made up:
/// only their totals matter to the gather.
/// </remarks>
public sealed class StepGatherAllReduceSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const long Step = 2;
    private static readonly string RunId = Guid.NewGuid().ToString("N");
    private static readonly StepPlan Plan = new(Step, Epoch: 0, SampleStart: 16, SampleCount: 8, ChunkSize: 2, TinyRun.Architecture.ParameterCount);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private readonly TensorChannel _channel;

    public StepGatherAllReduceSpecs() : base(SpecConfig.Serialized) =>
        _channel = TensorChannel.Open(new ChannelSettings(), new ActorInbox(ActorRefs.Nobody), _ => { });

    protected override void Dispose(bool disposing)
    {
        if (disposing) _channel.Dispose();
        base.Dispose(disposing);
    }

    private TestProbe[] Workers(int count) => [.. Enumerable.Range(1, count).Select(i => CreateTestProbe($"w{i}"))];

    /// <summary>The gather of step 2 over <paramref name="workers"/> (all ready, in this order), of which <paramref name="holders"/> hold the replica.</summary>
    private IActorRef StartGather(TestProbe[] workers, IEnumerable<TestProbe> holders, FloatTensor? initialState = null, TimeSpan? deadline = null, double verifyFraction = 0)
    {
        var endpoints = workers.ToDictionary(w => w.Ref, w => $"127.0.0.1:{20_000 + Array.IndexOf(workers, w)}");
        var plan = new AllReducePlan(RunId, Guid.ParseExact(RunId, "N"), holders.Select(h => h.Ref).ToHashSet(), initialState, StateArrays: 0, _channel);
        var none = new WeightsUpdate(RunId, Step, FloatTensor.CopyOf([]));
        var compute = new StepGather.ComputeSettings(StepDeadline: deadline ?? TimeSpan.FromMinutes(1), MaxAttempts: 3, verifyFraction);
        return ChildActorOf(StepGather.Props(Plan, none, [.. workers.Select(w => w.Ref)], compute, new GradientSumPool(), WeightsRoute.InProcess, endpoints, plan),
            $"step-{Step}");
    }

    private static string Endpoint(TestProbe[] workers, TestProbe worker) => $"127.0.0.1:{20_000 + Array.IndexOf(workers, worker)}";

    /// <summary>A participant's first messages: its layout, then its request.</summary>
    private static (StepLayout Layout, ComputeGradient Request) Begin(TestProbe worker)
    {
        var layout = worker.ExpectMsg<StepLayout>();
        return (layout, worker.ExpectMsg<ComputeGradient>());
    }

    /// <summary>Made-up totals of a node: its sample count, and a cost and correct count that depend on where it starts.</summary>
    private static NodeComputed Totals(ComputeGradient request) =>
        new(request.RunId, request.Step, request.NodeStart, request.NodeSize, request.SampleCount, Loss(request.NodeStart), request.NodeStart + 1, 0.001);

    /// <summary>Costs whose sum depends on the order of addition: (0.1 + 0.2) + 0.3 ≠ 0.1 + (0.2 + 0.3).</summary>
    private static double Loss(int nodeStart) => nodeStart switch { 0 => 0.1, 1 => 0.2, _ => 0.3 };

    private static void Computed(IActorRef gather, TestProbe worker, ComputeGradient request) => gather.Tell(Totals(request), worker.Ref);

    private static void Reduced(IActorRef gather, TestProbe worker, ulong? hash = null) =>
        gather.Tell(new StepReduced(RunId, Step, hash.HasValue, hash ?? 0), worker.Ref);

    private static (int, int)[] Nodes(StepLayout layout) => [.. layout.NodeStarts.Zip(layout.NodeSizes).OrderBy(n => n.First)];

    // ---- Layout -------------------------------------------------------------------------------

    [Fact]
    public void AllReduce_Layout_GoesToEveryParticipantBeforeItsRequest_AndJoinersGetTheStateFromAHolder()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        StartGather(workers, holders: [w1, w2]);

        // The joiner's state is asked of a holder first (in the coordinator's name), then the layout goes out, then the requests.
        var send = w1.ExpectMsg<SendState>();
        Assert.Equal(new SendState(RunId, Step, Endpoint(workers, w3), WithOptimizer: true), send);
        Assert.Equal(TestActor, w1.LastSender);
        var layouts = new List<StepLayout>();
        var requests = new List<ComputeGradient>();
        foreach (var worker in workers)
        {
            var (layout, request) = Begin(worker);
            Assert.Equal(TestActor, worker.LastSender);
            layouts.Add(layout);
            requests.Add(request);
        }

        foreach (var layout in layouts)
        {
            Assert.Equal((RunId, Step, 0, 8, 4), (layout.RunId, layout.Step, layout.Revision, layout.SampleCount, layout.ChunkCount));
            Assert.Equal([(0, 1), (1, 1), (2, 2)], Nodes(layout));
            Assert.Equal(workers.Select(w => Endpoint(workers, w)), layout.Participants);
            Assert.Equal([0, 1, 2], layout.SegmentOwners); // one segment each
            Assert.Equal([Endpoint(workers, w3)], layout.AwaitingState); // the holders are not awaiting it
        }
        Assert.Equal([(0, 1, 16, 2), (1, 1, 18, 2), (2, 2, 20, 4)], requests.Select(r => (r.NodeStart, r.NodeSize, r.SampleStart, r.SampleCount)));
        Assert.All(requests, r => Assert.Equal((RunId, Step, Step, 0), (r.RunId, r.Step, r.Version, r.Epoch)));
        w2.ExpectNoMsg(Quiet); // one source is enough
        w3.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void AllReduce_FirstStep_WithoutHolders_SendsTheCoordinatorsStateOverItsChannel_AndEveryoneAwaitsIt()
    {
        var workers = Workers(2);
        var joinersChannel = CreateTestProbe("joiners-channel");
        using var joiner = TensorChannel.Open(new ChannelSettings(), new ActorInbox(joinersChannel.Ref), _ => { });
        joiner.MaximumValues = 4;
        var endpoints = new Dictionary<IActorRef, string> { [workers[0].Ref] = joiner.Endpoint, [workers[1].Ref] = "127.0.0.1:1" };
        var plan = new AllReducePlan(RunId, Guid.ParseExact(RunId, "N"), new HashSet<IActorRef>(), FloatTensor.CopyOf([1f, 2f, 3f, 4f]), StateArrays: 1, _channel);
        var compute = new StepGather.ComputeSettings(TimeSpan.FromMinutes(1), 3);
        ChildActorOf(StepGather.Props(Plan, new WeightsUpdate(RunId, Step, FloatTensor.CopyOf([])), [workers[0].Ref, workers[1].Ref], compute,
            new GradientSumPool(), WeightsRoute.InProcess, endpoints, plan));

        var (layout, _) = Begin(workers[0]);
        Assert.Equal([joiner.Endpoint, "127.0.0.1:1"], layout.AwaitingState);
        var frame = joinersChannel.ExpectMsg<TensorArrived>();
        Assert.Equal((FrameKind.State, Step, Step, 1, 4), (frame.Header.Kind, frame.Header.Step, frame.Header.Version, frame.Header.Segment, frame.Header.Count));
        Assert.Equal([1f, 2f, 3f, 4f], frame.Payload.AsSpan(0, 4).ToArray());
        Assert.Equal(_channel.Endpoint, frame.Peer);
        workers[0].ExpectNoMsg(Quiet); // no SendState: no worker holds the state
    }

    // ---- Completion ---------------------------------------------------------------------------

    [Fact]
    public void AllReduce_EveryNodeAndEveryStepReduced_AnswersTheTotalsAddedAlongTheChunkTree()
    {
        var workers = Workers(3);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();

        // The nodes come in backwards and the StepReduced before some of them: neither order matters.
        Computed(gather, workers[2], requests[2]);
        Reduced(gather, workers[2]);
        Computed(gather, workers[1], requests[1]);
        Reduced(gather, workers[0]);
        Computed(gather, workers[0], requests[0]);
        ExpectNoMsg(Quiet); // one participant does not hold the sum yet

        Reduced(gather, workers[1]);
        var reduced = ExpectMsg<StepAllReduced>();
        Assert.Equal(Step, reduced.Step);
        Assert.Equal(8, reduced.SampleCount);
        Assert.Equal(1 + 2 + 3, reduced.CorrectCount);
        Assert.NotEqual(BitConverter.DoubleToInt64Bits(0.1 + (0.2 + 0.3)), BitConverter.DoubleToInt64Bits((0.1 + 0.2) + 0.3)); // the order shows
        Assert.Equal(BitConverter.DoubleToInt64Bits((0.1 + 0.2) + 0.3), BitConverter.DoubleToInt64Bits(reduced.LossSum));
        Assert.Equal(workers.Select(w => w.Ref), reduced.Participants);
    }

    [Fact]
    public void AllReduce_AllStepReducedButANodeMissing_WaitsForTheNode()
    {
        var workers = Workers(2);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        Computed(gather, workers[0], requests[0]);
        Reduced(gather, workers[0]);
        Reduced(gather, workers[1]);
        ExpectNoMsg(Quiet);

        Computed(gather, workers[1], requests[1]);
        var reduced = ExpectMsg<StepAllReduced>();
        Assert.Equal((8, 0.1 + 0.3, 1 + 3), (reduced.SampleCount, reduced.LossSum, reduced.CorrectCount));
    }

    // ---- Lost participants --------------------------------------------------------------------

    [Fact]
    public void AllReduce_ParticipantLostAfterComputing_NewRevisionReownsItsSegments_AndItsNodeIsComputedAgain()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        Computed(gather, w1, requests[0]);
        Computed(gather, w2, requests[1]);

        gather.Tell(new WorkerLost(w2.Ref, [w1.Ref, w3.Ref]));

        foreach (var survivor in new[] { w1, w3 })
        {
            var revised = survivor.ExpectMsg<StepLayout>();
            Assert.Equal((Step, 1), (revised.Step, revised.Revision));
            Assert.Equal([Endpoint(workers, w1), Endpoint(workers, w3)], revised.Participants);
            Assert.Equal(3, revised.SegmentOwners.Length); // as many segments as before
            Assert.Equal([0, 1, 1], revised.SegmentOwners); // w2's segment 1 goes to a survivor; the others keep theirs
            Assert.Equal([(0, 1), (1, 1), (2, 2)], Nodes(revised));
            Assert.Empty(revised.AwaitingState);
        }
        // w2's node: the survivors' sums of it would not reach the new owner, so it is computed again, by the idler survivor.
        var again = w1.ExpectMsg<ComputeGradient>();
        Assert.Equal((1, 1, 18, 2), (again.NodeStart, again.NodeSize, again.SampleStart, again.SampleCount));
        w2.ExpectNoMsg(Quiet);
        w3.ExpectNoMsg(TimeSpan.Zero);

        // The lost worker's late words count for nothing; the survivors complete the step alone.
        Reduced(gather, w2);
        Computed(gather, w3, requests[2]);
        Reduced(gather, w1);
        Reduced(gather, w3);
        ExpectNoMsg(Quiet); // node (1, 1) is not in again yet
        Computed(gather, w1, again);
        var reduced = ExpectMsg<StepAllReduced>();
        Assert.Equal([w1.Ref, w3.Ref], reduced.Participants);
        Assert.Equal((8, BitConverter.DoubleToInt64Bits((0.1 + 0.2) + 0.3), 6), (reduced.SampleCount, BitConverter.DoubleToInt64Bits(reduced.LossSum), reduced.CorrectCount));
    }

    [Fact]
    public void AllReduce_ParticipantLostAfterReducing_ItsReductionNoLongerCounts_TheOthersCompleteTheStep()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        Computed(gather, w1, requests[0]);
        Reduced(gather, w2);

        gather.Tell(new WorkerLost(w2.Ref, [w1.Ref]));
        var revised = w1.ExpectMsg<StepLayout>();
        Assert.Equal(1, revised.Revision);
        Assert.Equal([Endpoint(workers, w1)], revised.Participants);
        Assert.Equal([0, 0], revised.SegmentOwners);
        var again = w1.ExpectMsg<ComputeGradient>();
        Assert.Equal((2, 2), (again.NodeStart, again.NodeSize));

        Computed(gather, w1, again);
        ExpectNoMsg(Quiet);
        Reduced(gather, w1);
        Assert.Equal([w1.Ref], ExpectMsg<StepAllReduced>().Participants);
    }

    [Fact]
    public void AllReduce_NeedState_RemovesTheParticipantLikeALoss()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();

        gather.Tell(new NeedState(RunId, Step, HeldVersion: Step - 1), w2.Ref);

        var revised = w1.ExpectMsg<StepLayout>();
        Assert.Equal((Step, 1), (revised.Step, revised.Revision));
        Assert.Equal([Endpoint(workers, w1)], revised.Participants);
        Assert.Equal([0, 0], revised.SegmentOwners);
        var again = w1.ExpectMsg<ComputeGradient>();
        Assert.Equal((2, 2, 20, 4), (again.NodeStart, again.NodeSize, again.SampleStart, again.SampleCount));
        w2.ExpectNoMsg(Quiet);

        Computed(gather, w1, requests[0]);
        Computed(gather, w2, requests[1]); // no longer a participant: dropped
        Reduced(gather, w1);
        ExpectNoMsg(Quiet);
        Computed(gather, w1, again);
        var reduced = ExpectMsg<StepAllReduced>();
        Assert.Equal([w1.Ref], reduced.Participants);
        Assert.Equal((8, 4), (reduced.SampleCount, reduced.CorrectCount));
    }

    [Fact]
    public void AllReduce_LostSourceOfAJoinersState_AnotherHolderSendsIt()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather(workers, holders: [w1, w2]);
        Assert.Equal(Endpoint(workers, w3), w1.ExpectMsg<SendState>().Endpoint);
        foreach (var worker in workers) Begin(worker);

        gather.Tell(new WorkerLost(w1.Ref, [w2.Ref, w3.Ref]));

        var send = w2.ExpectMsg<SendState>();
        Assert.Equal(new SendState(RunId, Step, Endpoint(workers, w3), WithOptimizer: true), send);
        var revised = w2.ExpectMsg<StepLayout>();
        Assert.Equal([Endpoint(workers, w3)], revised.AwaitingState);
        Assert.Equal(1, revised.Revision);
    }

    [Fact]
    public void AllReduce_EveryHolderLost_WaitsForOneToComeBack_AndGoesOnWithIt()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: workers);
        foreach (var worker in workers) Begin(worker);

        gather.Tell(new WorkerLost(w1.Ref, [w2.Ref]));
        Assert.Equal(1, w2.ExpectMsg<StepLayout>().Revision);
        ExpectNoMsg(Quiet); // one participant is enough to go on
        gather.Tell(new WorkerLost(w2.Ref, []));
        ExpectNoMsg(Quiet); // no holder left: the step waits (the coordinator's own wait for workers has its limit)

        // w2's connection comes back: it still holds the replica of this version, and the step goes on with it.
        gather.Tell(new WorkerReady(w2.Ref, [w2.Ref], Endpoint(workers, w2)));
        var layout = w2.FishForMessage<StepLayout>(_ => true);
        Assert.Equal([Endpoint(workers, w2)], layout.Participants);
        Assert.Empty(layout.AwaitingState);
        var requests = w2.ReceiveWhile<ComputeGradient>(TimeSpan.FromMilliseconds(500), m => (m as ComputeGradient)!);
        Assert.Equal([(0, 2), (2, 2)], requests.Select(r => (r.NodeStart, r.NodeSize)).Order());
        foreach (var request in requests) Computed(gather, w2, request);
        Reduced(gather, w2);
        Assert.Equal(Step, ExpectMsg<StepAllReduced>().Step);
    }

    [Fact]
    public void AllReduce_EveryHolderLost_ThenOnlyAWorkerWithoutTheReplica_FailsTheStep()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather([w1, w2], holders: [w1, w2]);
        foreach (var worker in new[] { w1, w2 }) Begin(worker);
        gather.Tell(new WorkerLost(w1.Ref, [w2.Ref]));
        gather.Tell(new WorkerLost(w2.Ref, []));

        gather.Tell(new WorkerReady(w3.Ref, [w3.Ref], Endpoint(workers, w3)));
        var failed = ExpectMsg<StepFailed>();
        Assert.Equal(Step, failed.Step);
        Assert.Contains("no worker holds the weights and optimizer state", failed.Reason);
    }

    [Fact]
    public void AllReduce_OnlyHolderLost_WhileAJoinerAwaitsTheState_FailsTheStep()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: [w1]);
        Assert.Equal(Endpoint(workers, w2), w1.ExpectMsg<SendState>().Endpoint);
        foreach (var worker in workers) Begin(worker);

        gather.Tell(new WorkerLost(w1.Ref, [w2.Ref]));

        var failed = ExpectMsg<StepFailed>();
        Assert.Contains("no worker holds the weights and optimizer state", failed.Reason);
        Assert.Contains(w2.Ref.Path.ToString(), failed.Reason);
    }

    [Fact]
    public void AllReduce_EveryParticipantLost_WithTheInitialState_StartsAgainWithTheNextWorker()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather([w1, w2], holders: [], initialState: FloatTensor.CopyOf([0f]));
        foreach (var worker in new[] { w1, w2 }) Assert.Equal(2, Begin(worker).Layout.AwaitingState.Length);

        gather.Tell(new WorkerLost(w1.Ref, [w2.Ref]));
        Assert.Equal(1, w2.ExpectMsg<StepLayout>().Revision);
        w2.ExpectMsg<ComputeGradient>(); // w1's node
        gather.Tell(new WorkerLost(w2.Ref, []));
        ExpectNoMsg(Quiet); // the coordinator still holds the state: the step waits for a worker

        gather.Tell(new WorkerReady(w3.Ref, [w3.Ref], "127.0.0.1:20002"));
        var layout = w3.ExpectMsg<StepLayout>();
        Assert.Equal((Step, 2), (layout.Step, layout.Revision));
        Assert.Equal(["127.0.0.1:20002"], layout.Participants);
        Assert.Equal([0], layout.SegmentOwners);
        Assert.Equal(["127.0.0.1:20002"], layout.AwaitingState);
        var requests = new[] { w3.ExpectMsg<ComputeGradient>(), w3.ExpectMsg<ComputeGradient>() };
        Assert.Equal([(0, 2), (2, 2)], requests.Select(r => (r.NodeStart, r.NodeSize)).Order());

        foreach (var request in requests) Computed(gather, w3, request);
        Reduced(gather, w3);
        var reduced = ExpectMsg<StepAllReduced>();
        Assert.Equal([w3.Ref], reduced.Participants);
        Assert.Equal(8, reduced.SampleCount);
    }

    [Fact]
    public void AllReduce_EveryParticipantLost_WithTheInitialState_ALostWorkerBackInTheSameStep_MustReportTheStepAgain()
    {
        var workers = Workers(1);
        var w1 = workers[0];
        var gather = StartGather(workers, holders: [], initialState: FloatTensor.CopyOf([0f]));
        var request = Begin(w1).Request;
        Computed(gather, w1, request);
        gather.Tell(new WorkerLost(w1.Ref, [])); // its StepReduced was lost with it
        ExpectNoMsg(Quiet);

        gather.Tell(new WorkerReady(w1.Ref, [w1.Ref], Endpoint(workers, w1)));
        var layout = w1.ExpectMsg<StepLayout>();
        Assert.Equal((1, 1), (layout.Revision, layout.SegmentOwners.Length));
        Assert.Equal([Endpoint(workers, w1)], layout.AwaitingState);
        var again = w1.ExpectMsg<ComputeGradient>();
        Computed(gather, w1, again);
        ExpectNoMsg(Quiet); // the node alone is not enough: the gather waits for w1's StepReduced
        Reduced(gather, w1);
        Assert.Equal([w1.Ref], ExpectMsg<StepAllReduced>().Participants);
    }

    [Fact]
    public void AllReduce_Deadline_EveryNodeComputedButAParticipantWithoutTheSum_IsRemovedAsALaggard()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: workers, deadline: TimeSpan.FromMilliseconds(500));
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        Computed(gather, w1, requests[0]);
        Computed(gather, w2, requests[1]);
        Reduced(gather, w1);

        // At the deadline w2 still lacks a segment while w1 has them all: w2 goes, and its node is computed again by w1.
        var revised = w1.ExpectMsg<StepLayout>(TimeSpan.FromSeconds(10));
        Assert.Equal(1, revised.Revision);
        Assert.Equal([Endpoint(workers, w1)], revised.Participants);
        var again = w1.ExpectMsg<ComputeGradient>();
        Assert.Equal((2, 2), (again.NodeStart, again.NodeSize));
        Computed(gather, w1, again);
        Assert.Equal([w1.Ref], ExpectMsg<StepAllReduced>().Participants);
    }

    // ---- Replica hashes -----------------------------------------------------------------------

    [Fact]
    public void AllReduce_ReplicaHashesDiffer_TheMajorityWins_AndTheReasonNamesTheOddWorker()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        for (var i = 0; i < 3; i++) Computed(gather, workers[i], requests[i]);

        Reduced(gather, w1, 0xAAAA);
        Reduced(gather, w2, 0xBBBB);
        Reduced(gather, w3, 0xAAAA);

        var failed = ExpectMsg<StepFailed>();
        Assert.Equal(Step, failed.Step);
        var split = failed.Reason.IndexOf("do not match", StringComparison.Ordinal);
        Assert.True(split > 0, failed.Reason);
        var (odd, agreed) = (failed.Reason[..split], failed.Reason[split..]);
        Assert.Contains($"{w2.Ref.Path} ({0xBBBBUL:x16})", odd);
        Assert.DoesNotContain(w1.Ref.Path.ToString(), odd);
        Assert.DoesNotContain(w3.Ref.Path.ToString(), odd);
        Assert.Contains(w1.Ref.Path.ToString(), agreed);
        Assert.Contains(w3.Ref.Path.ToString(), agreed);
        Assert.Contains($"{0xAAAAUL:x16}", agreed);
    }

    [Fact]
    public void AllReduce_TwoReplicaHashesDiffer_FailsNamingBothWorkers()
    {
        var workers = Workers(2);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        for (var i = 0; i < 2; i++) Computed(gather, workers[i], requests[i]);
        Reduced(gather, workers[0], 1);
        Reduced(gather, workers[1], 2);

        var failed = ExpectMsg<StepFailed>();
        Assert.Contains("replicas differ", failed.Reason);
        Assert.Contains(workers[0].Ref.Path.ToString(), failed.Reason);
        Assert.Contains(workers[1].Ref.Path.ToString(), failed.Reason);
    }

    [Fact]
    public void AllReduce_SameReplicaHashes_OrSomeWithoutHash_Complete()
    {
        var workers = Workers(3);
        var gather = StartGather(workers, holders: workers);
        var requests = workers.Select(w => Begin(w).Request).ToArray();
        for (var i = 0; i < 3; i++) Computed(gather, workers[i], requests[i]);
        Reduced(gather, workers[0], 7);
        Reduced(gather, workers[1]);
        Reduced(gather, workers[2], 7);
        Assert.Equal(Step, ExpectMsg<StepAllReduced>().Step);
    }

    // ---- Verification ---------------------------------------------------------------------------

    /// <summary>A verifier's answer: the hashes of its own computation of the node of <paramref name="request"/>, with the node's made-up totals.</summary>
    private static PartHashes ComputedHashes(ComputeGradient request, params ulong[] hashes) =>
        new(RunId, Step, 0, request.NodeStart, request.NodeSize, Computed: true, [.. Enumerable.Range(0, hashes.Length)], hashes,
            request.SampleCount, Loss(request.NodeStart), request.NodeStart + 1);

    /// <summary>An owner's answer: the hash of the part of segment <paramref name="segment"/> it received.</summary>
    private static PartHashes ReceivedHash(ComputeGradient request, int segment, ulong hash) =>
        new(RunId, Step, 0, request.NodeStart, request.NodeSize, Computed: false, [segment], [hash]);

    [Fact]
    public void AllReduce_Check_AgreeingHashes_PassTheNode_AndTheStepCompletes()
    {
        var workers = Workers(2);
        var (w1, w2) = (workers[0], workers[1]);
        var gather = StartGather(workers, holders: workers, verifyFraction: 1);
        var requests = workers.Select(w => Begin(w).Request).ToArray();

        Computed(gather, w1, requests[0]);
        // Checked after the fact: w2 computes w1's node again, and both owners hash what they got.
        var verify = w2.ExpectMsg<ComputeGradient>();
        Assert.True(verify.Verify);
        Assert.Equal((requests[0].NodeStart, requests[0].NodeSize), (verify.NodeStart, verify.NodeSize));
        foreach (var worker in workers) Assert.Equal(new HashParts(RunId, Step, 0, requests[0].NodeStart, requests[0].NodeSize), worker.ExpectMsg<HashParts>());
        gather.Tell(ComputedHashes(requests[0], 11, 12), w2.Ref);
        gather.Tell(ReceivedHash(requests[0], 0, 11), w1.Ref);

        // w2's node is checked by w1; until both checks pass, the step is not done.
        Computed(gather, w2, requests[1]);
        Assert.True(w1.ExpectMsg<ComputeGradient>().Verify);
        foreach (var worker in workers) worker.ExpectMsg<HashParts>();
        foreach (var worker in workers) Reduced(gather, worker);
        gather.Tell(ReceivedHash(requests[0], 1, 12), w2.Ref);
        gather.Tell(ComputedHashes(requests[1], 21, 22), w1.Ref);
        gather.Tell(ReceivedHash(requests[1], 0, 21), w1.Ref);
        ExpectNoMsg(Quiet);
        gather.Tell(ReceivedHash(requests[1], 1, 22), w2.Ref);
        Assert.Equal(Step, ExpectMsg<StepAllReduced>().Step);
    }

    [Fact]
    public void AllReduce_Check_PartsTwoOthersComputeDifferently_ConvictTheirSender_AndTheStepStartsOverWithoutIt()
    {
        var workers = Workers(3);
        var (w1, w2, w3) = (workers[0], workers[1], workers[2]);
        var gather = StartGather(workers, holders: workers, verifyFraction: 1);
        var requests = workers.Select(w => Begin(w).Request).ToArray();

        Computed(gather, w1, requests[0]);
        Assert.True(w2.ExpectMsg<ComputeGradient>().Verify);
        foreach (var worker in workers) worker.ExpectMsg<HashParts>();
        // The owners got parts (segment 0: hash 9) other than w2 computes (1).
        gather.Tell(ComputedHashes(requests[0], 1, 2, 3), w2.Ref);
        for (var s = 0; s < 3; s++) gather.Tell(ReceivedHash(requests[0], s, s == 0 ? 9UL : (ulong)s + 1), workers[s].Ref);

        // A third decides, and agrees with w2: w1 is convicted.
        Assert.True(w3.ExpectMsg<ComputeGradient>().Verify);
        gather.Tell(ComputedHashes(requests[0], 1, 2, 3), w3.Ref);
        var fault = ExpectMsg<WorkerFaulted>();
        Assert.Equal((w1.Ref, true), (fault.Worker, fault.Proven));
        Assert.Contains("differ from what", fault.Reason);

        // Round 1 of the step, among w2 and w3, every node computed again; w1 hears nothing more.
        foreach (var worker in new[] { w2, w3 })
        {
            var layout = worker.FishForMessage<StepLayout>(_ => true);
            Assert.Equal(1, layout.Round);
            Assert.Equal([Endpoint(workers, w2), Endpoint(workers, w3)], layout.Participants);
        }
        var again = new[] { w2, w3 }.SelectMany(w => w.ReceiveWhile<ComputeGradient>(TimeSpan.FromMilliseconds(500), m => (m as ComputeGradient)!)).ToList();
        Assert.Equal([(0, 1), (1, 1), (2, 2)], again.Select(r => (r.NodeStart, r.NodeSize)).Order());
        Assert.All(again, r => Assert.False(r.Verify));
        w1.ExpectNoMsg(Quiet);

        // Answers of round 0 count for nothing.
        foreach (var worker in new[] { w2, w3 }) Reduced(gather, worker);
        ExpectNoMsg(Quiet);
    }
}
