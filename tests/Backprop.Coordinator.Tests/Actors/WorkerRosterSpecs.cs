using Akka.Actor;
using Akka.Remote;
using Akka.TestKit;
using Backprop.Coordinator.Actors;
using Backprop.Data;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>
/// The roster as a child of the test actor, which stands for the coordinator: it receives the
/// roster's reports, and the workers' answers, which go out in its name. Workers are TestProbes; a
/// probe answers Identify by itself, as a worker actor does.
/// </summary>
public sealed class WorkerRosterSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly SetupRun Setup = new(
        "run-1", [.. TinyRun.Architecture.Sizes], TinyRun.Architecture.Hidden, TinyRun.Architecture.Output, TinyRun.Architecture.Cost,
        ChunkSize: 2, Seed: 3, TrainCount: 40, DataHash: TinyRun.Data.ContentHash, ScalingKind.None, FloatTensor.CopyOf([]), FloatTensor.CopyOf([]));

    /// <summary>A worker node's address, as membership would give it.</summary>
    private static readonly Address Node = new("akka.tcp", "backprop", "10.0.0.7", 4711);

    public WorkerRosterSpecs() : base(SpecConfig.Serialized) { }

    /// <summary>What remoting publishes when the connection to <see cref="Node"/> drops.</summary>
    private DisassociatedEvent ConnectionDropped() => new(((ExtendedActorSystem)Sys).Provider.DefaultAddress, Node, inbound: true);

    private IActorRef StartRoster(TimeSpan? probe = null) =>
        ChildActorOf(WorkerRoster.Props(Setup, discoverClusterWorkers: false, probe ?? TimeSpan.FromMilliseconds(100)), "roster");

    /// <summary>The worker accepts the setup it was sent, in the coordinator's name.</summary>
    private void Accept(IActorRef roster, TestProbe worker)
    {
        Assert.Equal(Setup.RunId, worker.ExpectMsg<SetupRun>().RunId);
        Assert.Equal(TestActor, worker.LastSender);
        roster.Tell(new SetupAccepted(Setup.RunId), worker.Ref);
    }

    /// <summary>A worker found by membership: Identify's answer names its node.</summary>
    private TestProbe FoundOnNode(IActorRef roster, Address node, string name)
    {
        var worker = CreateTestProbe(name);
        roster.Tell(new ActorIdentity(node, worker.Ref));
        Accept(roster, worker);
        return worker;
    }

    /// <summary>A worker that registers, is set up and is reported ready.</summary>
    private TestProbe Registered(IActorRef roster, string name)
    {
        var worker = CreateTestProbe(name);
        roster.Tell(RegisterWorker.Instance, worker.Ref);
        Accept(roster, worker);
        Assert.Equal(worker.Ref, ExpectMsg<WorkerReady>().Worker);
        return worker;
    }

    [Fact]
    public void RegisteredWorker_IsSetUp_AndReportedReadyOnceItAccepts()
    {
        var roster = StartRoster();
        var first = CreateTestProbe("w1");
        var second = CreateTestProbe("w2");
        roster.Tell(RegisterWorker.Instance, first.Ref);
        Accept(roster, first);
        Assert.Equal([first.Ref], ExpectMsg<WorkerReady>(r => r.Worker.Equals(first.Ref)).Ready);

        roster.Tell(RegisterWorker.Instance, second.Ref);
        roster.Tell(RegisterWorker.Instance, second.Ref); // registering twice changes nothing
        Accept(roster, second);
        Assert.Equal([first.Ref, second.Ref], ExpectMsg<WorkerReady>().Ready);
        second.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void WorkerThatRefuses_IsNeverReady_AndItsStopIsNoLoss()
    {
        var roster = StartRoster();
        var worker = CreateTestProbe("w1");
        roster.Tell(RegisterWorker.Instance, worker.Ref);
        worker.ExpectMsg<SetupRun>();
        EventFilter.Error(contains: "refused the run: other data").ExpectOne(() =>
            roster.Tell(new SetupRefused(Setup.RunId, "other data"), worker.Ref));
        Sys.Stop(worker.Ref);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void ReadyWorkerThatStops_IsReportedLost()
    {
        var roster = StartRoster();
        var worker = Registered(roster, "w1");

        EventFilter.Warning(contains: "stopped; 0 ready workers left").ExpectOne(() => Sys.Stop(worker.Ref));
        var lost = ExpectMsg<WorkerLost>();
        Assert.Equal(worker.Ref, lost.Worker);
        Assert.Empty(lost.Ready);
    }

    [Fact]
    public void NodeWhoseConnectionDrops_IsSetAsideAtOnce_ThenReadyAgainWhenItAnswersTheProbe()
    {
        var roster = StartRoster();
        var worker = FoundOnNode(roster, Node, "w1");
        ExpectMsg<WorkerReady>();

        roster.Tell(ConnectionDropped());
        Assert.Equal(worker.Ref, ExpectMsg<WorkerLost>().Worker);
        // The probe is an Identify, which the (live) worker answers by itself.
        var back = ExpectMsg<WorkerReady>();
        Assert.Equal([worker.Ref], back.Ready);
        worker.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // set up already: no second setup
    }

    [Fact]
    public void NodeSetAsideBeforeItAccepted_GetsTheSetupAgainWhenItAnswers()
    {
        var roster = StartRoster();
        var worker = CreateTestProbe("w1");
        roster.Tell(new ActorIdentity(Node, worker.Ref));
        worker.ExpectMsg<SetupRun>();
        roster.Tell(ConnectionDropped());
        Accept(roster, worker); // the setup is sent again once the node answers
        ExpectMsg<WorkerReady>();
    }

    [Fact]
    public void NodeSetAside_ThatComesBackAsANewIncarnation_IsReplacedByIt()
    {
        var roster = StartRoster(probe: TimeSpan.FromMinutes(10)); // no probe answers in this test
        var old = FoundOnNode(roster, Node, "w1");
        ExpectMsg<WorkerReady>();
        roster.Tell(ConnectionDropped());
        ExpectMsg<WorkerLost>();

        TestProbe incarnation = null!;
        EventFilter.Warning(contains: "was replaced by a new incarnation").ExpectOne(() => incarnation = FoundOnNode(roster, Node, "w1-again"));
        Assert.Equal([incarnation.Ref], ExpectMsg<WorkerReady>().Ready);
        old.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // gone for good: not probed, not set up again
    }

    [Fact]
    public void RunOver_EveryWorkerIsTold_AndSoIsOneThatComesLate()
    {
        var roster = StartRoster();
        var worker = Registered(roster, "w1");

        roster.Tell(RunOver.Instance);
        Assert.Equal(Setup.RunId, worker.ExpectMsg<RunFinished>().RunId);
        var late = CreateTestProbe("late");
        roster.Tell(RegisterWorker.Instance, late.Ref);
        late.ExpectMsg<RunFinished>();
        Assert.Equal(TestActor, late.LastSender);
        roster.Tell(new ActorIdentity(Node, late.Ref));
        late.ExpectMsg<RunFinished>();
    }
}
