using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.TestKit;
using Backprop.Clustering;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Training;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Tests.Clustering;

/// <summary>
/// Several actor systems on 127.0.0.1 (port 0) in one process: the TestKit's system is the
/// coordinator node, worker nodes join it over TCP. Failure detection is shortened so a crash is
/// noticed in about a second.
/// </summary>
public sealed class MultiNodeTests : Akka.TestKit.Xunit2.TestKit
{
    private const string FastFailureDetection = """
        akka.cluster.failure-detector.heartbeat-interval = 200ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 1s
        akka.cluster.split-brain-resolver.stable-after = 2s
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        akka.test.single-expect-default = 30s
        """;

    private static readonly DataSplit Digits = DataSources.Load(new DataOptions("digits"));
    private static readonly FeatureScaling Scaling = FeatureScaling.Fit(ScalingKind.Max, Digits.Train);
    private static readonly DataSet Train = Scaling.Apply(Digits.Train);
    private static readonly DataSet Test = Scaling.Apply(Digits.Test);

    private readonly List<ActorSystem> _workers = [];
    private readonly TestProbe _listener;

    public MultiNodeTests()
        : base(ConfigurationFactory.ParseString(FastFailureDetection + "\nakka.loglevel = INFO")
            .WithFallback(new NodeSettings("coordinator", "127.0.0.1", Port: 0, MaximumFrameBytes: 1 << 20).ToConfig()), NodeSettings.SystemName)
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        _listener = CreateTestProbe("listener");
    }

    protected override void AfterAll()
    {
        foreach (var worker in _workers) worker.Terminate().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }

    private static TrainingSettings Settings(int epochs) => new(
        new Architecture([64, 32, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy),
        new OptimizerSettings(OptimizerKind.Adam, 0.003f), BatchSize: 32, Epochs: epochs, Seed: 5, ChunkSize: 8);

    private static float[] InProcessResult(int epochs)
    {
        var run = new TrainingRun(Settings(epochs), Train, Test, Scaling);
        return TrainingHost.RunLocalAsync(run, 1, new CoordinatorSettings()).GetAwaiter().GetResult().Parameters.Span.ToArray();
    }

    private IActorRef StartCoordinator(int epochs, int minWorkers, TimeSpan? probe = null) =>
        Sys.ActorOf(TrainingCoordinator.Props(
            new TrainingRun(Settings(epochs), Train, Test, Scaling),
            new CoordinatorSettings(MinWorkers: minWorkers, DiscoverClusterWorkers: true) { SuspendedProbe = probe ?? TimeSpan.FromMilliseconds(100) },
            _listener.Ref), "coordinator");

    /// <summary>A worker node joining this cluster; <paramref name="crashable"/> turns off the graceful leave on Terminate.</summary>
    private ActorSystem StartWorker(bool crashable = false, string logLevel = "WARNING")
    {
        var address = Akka.Cluster.Cluster.Get(Sys).SelfAddress;
        var node = new NodeSettings("worker", "127.0.0.1", Port: 0, Coordinator: $"{address.Host}:{address.Port}", MaximumFrameBytes: 1 << 20, LogLevel: logLevel);
        var overrides = FastFailureDetection + (crashable ? "\nakka.coordinated-shutdown.run-by-actor-system-terminate = off" : "");
        var file = Path.GetTempFileName();
        File.WriteAllText(file, overrides);
        try
        {
            var system = WorkerNode.Start(node with { ConfigFile = file }, _ => Train, threads: 1);
            _workers.Add(system);
            return system;
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void TwoWorkerNodes_TrainToTheSameBitsAsInProcessMode()
    {
        StartCoordinator(epochs: 2, minWorkers: 2);
        StartWorker();
        StartWorker();
        _listener.ExpectMsg<EpochCompleted>();
        _listener.ExpectMsg<EpochCompleted>();
        var finished = _listener.ExpectMsg<TrainingFinished>();
        Assert.Equal(InProcessResult(2), finished.Parameters.Span.ToArray());
    }

    [Fact]
    public void WorkerNodeThatCrashesMidTraining_HasItsShardsMoved_AndTrainingCompletesWithTheSameBits()
    {
        StartCoordinator(epochs: 4, minWorkers: 2);
        StartWorker();
        var doomed = StartWorker(crashable: true);
        _listener.ExpectMsg<EpochCompleted>();

        // Mid-step (steps follow each other without pause): the coordinator hears of the crash as the
        // connection dropping, the worker actor stopping or its node becoming unreachable (whichever
        // comes first; the others follow), and moves the worker's open nodes.
        var log = CreateTestProbe();
        Sys.EventStream.Subscribe(log.Ref, typeof(Warning));
        _ = doomed.Terminate();
        log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains("1 ready workers left", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), hint: "work moved");
        var finished = _listener.FishForMessage<TrainingFinished>(_ => true, hint: "training finished");
        Assert.Equal(InProcessResult(4), finished.Parameters.Span.ToArray());
    }

    [Fact]
    public void WorkerNodeWhoseConnectionDrops_IsSetAsideAtOnce_AndTakesPartAgainWhenItAnswers_WithTheSameBits()
    {
        StartCoordinator(epochs: 10, minWorkers: 2);
        StartWorker();
        var flaky = StartWorker(logLevel: "DEBUG");
        _listener.ExpectMsg<EpochCompleted>();

        // What remoting publishes when the connection to a node drops; here the node is alive and well
        // (as after a network blip), so it must answer the coordinator's probe and be given work again.
        var log = CreateTestProbe();
        Sys.EventStream.Subscribe(log.Ref, typeof(Warning));
        Sys.EventStream.Subscribe(log.Ref, typeof(Info));
        var address = Akka.Cluster.Cluster.Get(flaky).SelfAddress;
        Sys.EventStream.Publish(new Akka.Remote.DisassociatedEvent(Akka.Cluster.Cluster.Get(Sys).SelfAddress, address, inbound: true));
        log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains($"lost the connection to worker node {address}", StringComparison.Ordinal),
            hint: "set aside");
        log.FishForMessage(m => m is Info i && i.Message.ToString()!.Contains("answers again (2 ready)", StringComparison.Ordinal), hint: "back");
        var computed = CreateTestProbe();
        flaky.EventStream.Subscribe(computed.Ref, typeof(Debug));
        computed.FishForMessage(m => m is Debug d && d.Message.ToString()!.Contains("computing chunks", StringComparison.Ordinal), hint: "takes part again");

        var finished = _listener.FishForMessage<TrainingFinished>(_ => true, hint: "training finished");
        Assert.Equal(InProcessResult(10), finished.Parameters.Span.ToArray());
    }

    [Fact]
    public void WorkerNodeSetAside_ThatComesBackAsANewIncarnation_IsReplacedByIt()
    {
        // Probes far apart, so the set-aside worker cannot answer before the new incarnation shows up.
        var coordinator = StartCoordinator(epochs: 3, minWorkers: 1, probe: TimeSpan.FromMinutes(10));
        var node = StartWorker();
        _listener.ExpectMsg<EpochCompleted>();
        coordinator.Tell(PauseTraining.Instance);
        _listener.FishForMessage<TrainingPaused>(_ => true, hint: "paused");

        var log = CreateTestProbe();
        Sys.EventStream.Subscribe(log.Ref, typeof(Warning));
        var address = Akka.Cluster.Cluster.Get(node).SelfAddress;
        Sys.EventStream.Publish(new Akka.Remote.DisassociatedEvent(Akka.Cluster.Cluster.Get(Sys).SelfAddress, address, inbound: true));
        log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains($"lost the connection to worker node {address}", StringComparison.Ordinal),
            hint: "set aside");

        // What membership's Identify brings back when the node restarted on the same address: another
        // worker actor at the node's /user/worker (another uid), answering for itself.
        var incarnation = ((ExtendedActorSystem)Sys).Provider.ResolveActorRef($"{address}/user/{WorkerNode.ActorName}#12345");
        coordinator.Tell(new ActorIdentity(address, incarnation), incarnation);
        log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains("was replaced by a new incarnation", StringComparison.Ordinal),
            hint: "old worker dropped");
    }

    [Fact]
    public void WorkerNodeThatLeavesGracefully_HasItsShardsMovedWithoutFailureDetection()
    {
        StartCoordinator(epochs: 30, minWorkers: 2); // long enough to leave in the middle
        StartWorker();
        var leaving = StartWorker();
        _listener.ExpectMsg<EpochCompleted>();

        // What SIGTERM does on a worker process: coordinated shutdown, which leaves the cluster.
        EventFilter.Warning(contains: "is leaving the cluster").ExpectOne(TimeSpan.FromSeconds(10), () =>
            CoordinatedShutdown.Get(leaving).Run(CoordinatedShutdown.ClrExitReason.Instance));
        var finished = _listener.FishForMessage<TrainingFinished>(_ => true, hint: "training finished");
        Assert.Equal(InProcessResult(30), finished.Parameters.Span.ToArray());
    }

    [Fact]
    public void WorkerNodeJoiningMidTraining_TakesPartFromTheNextStep()
    {
        var coordinator = StartCoordinator(epochs: 3, minWorkers: 1);
        StartWorker();
        _listener.ExpectMsg<EpochCompleted>();
        coordinator.Tell(PauseTraining.Instance);
        _listener.ExpectMsg<TrainingPaused>();

        ActorSystem late = null!;
        EventFilter.Info(contains: "ready (2 ready)").ExpectOne(TimeSpan.FromSeconds(20), () => late = StartWorker(logLevel: "DEBUG"));
        var computed = CreateTestProbe();
        late.EventStream.Subscribe(computed.Ref, typeof(Debug));
        coordinator.Tell(ResumeTraining.Instance);
        computed.FishForMessage(m => m is Debug d && d.Message.ToString()!.Contains("computing chunks", StringComparison.Ordinal));
        var finished = _listener.FishForMessage<TrainingFinished>(_ => true, hint: "training finished");
        Assert.Equal(InProcessResult(3), finished.Parameters.Span.ToArray());
    }
}
