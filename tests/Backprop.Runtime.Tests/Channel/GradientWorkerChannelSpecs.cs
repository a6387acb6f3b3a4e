using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Backprop.Channel;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;
using MathNet.Numerics.Random;

namespace Backprop.Runtime.Tests.Channel;

/// <summary>
/// A worker with a tensor channel against a TestKit coordinator: setup and requests through Akka
/// (serialize-messages = on), weights and gradient sums over a real <see cref="TensorChannel"/>
/// that stands in for the coordinator's.
/// </summary>
public sealed class GradientWorkerChannelSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config SpecConfig = ConfigurationFactory.ParseString("""
        akka.loglevel = INFO
        akka.actor.serialize-messages = on
        """).WithFallback(ProtocolConfig.Serialization);

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);
    private static readonly Architecture Net = new([3, 6, 4], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy);
    private static readonly DataSet Data = MakeData(30, seed: 2);
    private const int ChunkSize = 4, Seed = 9;

    private readonly TestProbe _frames;        // what arrives at the coordinator's channel
    private readonly TensorChannel _coordinatorChannel;
    private readonly List<IDisposable> _owned = [];

    public GradientWorkerChannelSpecs() : base(SpecConfig)
    {
        _frames = CreateTestProbe("coordinator-channel");
        _coordinatorChannel = OpenChannel(_frames);
    }

    protected override void AfterAll()
    {
        foreach (var d in _owned) d.Dispose();
        base.AfterAll();
    }

    private TensorChannel OpenChannel(TestProbe inbox)
    {
        var channel = TensorChannel.Open(new ChannelSettings(), new ActorInbox(inbox.Ref), _ => { });
        channel.MaximumValues = 1 << 20;
        _owned.Add(channel);
        return channel;
    }

    private static DataSet MakeData(int n, int seed)
    {
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        var features = new float[n * 3];
        for (var i = 0; i < features.Length; i++) features[i] = (float)random.NextDouble();
        var labels = new int[n];
        for (var i = 0; i < n; i++) labels[i] = random.Next(4);
        return new DataSet("w", features, 3, labels, 4, new SampleOrigin("w", "sample", 0));
    }

    private static SetupRun Setup(Guid run, string? tensorEndpoint, Architecture? net = null)
    {
        net ??= Net;
        return new(run.ToString("N"), [.. net.Sizes], net.Hidden, net.Output, net.Cost, ChunkSize, Seed, Data.Count, Data.ContentHash,
            ScalingKind.None, FloatTensor.CopyOf(new float[3]), FloatTensor.CopyOf([1f, 1f, 1f]), tensorEndpoint);
    }

    /// <summary>A worker with a channel, set up for <paramref name="run"/> with the coordinator's channel; returns its endpoint.</summary>
    private (IActorRef Worker, TestProbe Coordinator, string Endpoint) ChannelWorker(Guid run)
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(GradientWorker.Props(coordinator.Ref, _ => Data, threads: 1, channel: new ChannelSettings()));
        coordinator.ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(run, _coordinatorChannel.Endpoint), coordinator.Ref);
        var accepted = coordinator.ExpectMsg<SetupAccepted>(Long);
        Assert.Equal(run.ToString("N"), accepted.RunId);
        Assert.NotNull(accepted.TensorEndpoint);
        return (worker, coordinator, accepted.TensorEndpoint);
    }

    private static FrameHeader WeightsFrame(Guid run, long version, int count) => new(FrameKind.Weights, run, 0, version, Count: count);

    private static void AssertSameBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"value {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void Setup_WithAChannel_AnswersItsEndpoint()
    {
        var (_, _, endpoint) = ChannelWorker(Guid.NewGuid());
        Assert.StartsWith("127.0.0.1:", endpoint);
        Assert.NotEqual(_coordinatorChannel.Endpoint, endpoint);
    }

    [Fact]
    public void Setup_WithoutAChannel_AnswersNoEndpoint()
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(GradientWorker.Props(coordinator.Ref, _ => Data, threads: 1));
        coordinator.ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Guid.NewGuid(), null), coordinator.Ref);
        Assert.Null(coordinator.ExpectMsg<SetupAccepted>().TensorEndpoint);
    }

    [Fact]
    public void Setup_NamingACoordinatorChannel_IsRefusedByAWorkerWithoutOne()
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(GradientWorker.Props(coordinator.Ref, _ => Data, threads: 1));
        coordinator.ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Guid.NewGuid(), _coordinatorChannel.Endpoint), coordinator.Ref);
        Assert.Contains("no tensor channel", coordinator.ExpectMsg<SetupRefused>().Reason);
    }

    [Fact]
    public void Setup_WithAChannel_ARunIdThatIsNoGuid_IsRefused()
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(GradientWorker.Props(coordinator.Ref, _ => Data, threads: 1, channel: new ChannelSettings()));
        coordinator.ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Guid.NewGuid(), _coordinatorChannel.Endpoint) with { RunId = "run-1" }, coordinator.Ref);
        Assert.Contains("'run-1' is not a GUID", coordinator.ExpectMsg<SetupRefused>().Reason);
    }

    [Fact]
    public void Compute_BeforeItsWeights_IsAnsweredOverTheChannelOnlyOnceTheCoordinatorsWeightsArrive_AsTheInProcessGradient()
    {
        var run = Guid.NewGuid();
        var (worker, coordinator, endpoint) = ChannelWorker(run);
        var weights = Initialization.Create(Net, 4);
        var request = new ComputeGradient(run.ToString("N"), Step: 3, Version: 7, Epoch: 2, SampleStart: 8, SampleCount: 8, NodeStart: 2, NodeSize: 2);

        worker.Tell(request, coordinator.Ref);
        // The right weights, from a channel that is not the coordinator's: dropped, the request still waits.
        var stranger = OpenChannel(CreateTestProbe());
        EventFilter.Warning(contains: $"dropping a Weights frame of step 0 from {stranger.Endpoint}").ExpectOne(Long, () =>
            stranger.Send(endpoint, WeightsFrame(run, 7, weights.Length), weights));
        // From the coordinator's channel but for another run: dropped too.
        EventFilter.Warning(contains: $"dropping a Weights frame of step 0 from {_coordinatorChannel.Endpoint}").ExpectOne(Long, () =>
            _coordinatorChannel.Send(endpoint, WeightsFrame(Guid.NewGuid(), 7, weights.Length), weights));
        _frames.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        coordinator.ExpectNoMsg(TimeSpan.Zero);

        _coordinatorChannel.Send(endpoint, WeightsFrame(run, 7, weights.Length), weights);
        var frame = _frames.ExpectMsg<TensorArrived>(Long);
        coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // nothing through Akka

        // The same request of a worker in the coordinator's process, as a message.
        var local = CreateTestProbe();
        var inProcess = Sys.ActorOf(GradientWorker.Props(local.Ref, _ => Data, threads: 1));
        local.ExpectMsg<RegisterWorker>();
        inProcess.Tell(Setup(run, null), local.Ref);
        local.ExpectMsg<SetupAccepted>();
        inProcess.Tell(new WeightsUpdate(run.ToString("N"), 7, FloatTensor.CopyOf(weights)), local.Ref);
        inProcess.Tell(request, local.Ref);
        var expected = local.ExpectMsg<GradientComputed>(Long);

        Assert.Equal(endpoint, frame.Peer);
        var h = frame.Header;
        Assert.Equal(
            (FrameKind.NodeSum, run, 3L, 7L, 2, 2, 8, expected.CorrectCount, expected.LossSum, Net.ParameterCount, 0),
            (h.Kind, h.Run, h.Step, h.Version, h.NodeStart, h.NodeSize, h.SampleCount, h.CorrectCount, h.LossSum, h.Count, h.Segment));
        Assert.True(h.ComputeSeconds > 0);
        AssertSameBits(expected.Sum.Span, frame.Payload);

        // And both are the engine's gradient of those samples.
        var order = Shuffling.Permutation(Data.Count, Seed, 2);
        var engine = new GradientSum(Net.ParameterCount);
        new BatchEngine(Net, ChunkSize).Gradient(weights, Data, order.AsSpan(8, 8), engine);
        AssertSameBits(engine.Values, frame.Payload);
    }

    [Fact]
    public void Compute_ManyRequests_EachAnsweredOverTheChannelInOrder()
    {
        var run = Guid.NewGuid();
        var (worker, coordinator, endpoint) = ChannelWorker(run);
        var weights = Initialization.Create(Net, 5);
        _coordinatorChannel.Send(endpoint, WeightsFrame(run, 1, weights.Length), weights);
        for (var node = 0; node < 7; node++)
            worker.Tell(new ComputeGradient(run.ToString("N"), 1, 1, 0, 4 * node, 4, node, 1), coordinator.Ref);
        var order = Shuffling.Permutation(Data.Count, Seed, 0);
        var engine = new BatchEngine(Net, ChunkSize);
        for (var node = 0; node < 7; node++)
        {
            var frame = _frames.ExpectMsg<TensorArrived>(Long);
            Assert.Equal(node, frame.Header.NodeStart);
            var expected = new GradientSum(Net.ParameterCount);
            engine.Gradient(weights, Data, order.AsSpan(4 * node, 4), expected);
            AssertSameBits(expected.Values, frame.Payload);
            Assert.Equal(expected.LossSum, frame.Header.LossSum);
        }
    }

    [Fact]
    public void Compute_ForAnOlderVersionThanTheChannelDelivered_AnswersVersionMismatch()
    {
        var run = Guid.NewGuid();
        var (worker, coordinator, endpoint) = ChannelWorker(run);
        var weights = Initialization.Create(Net, 4);
        _coordinatorChannel.Send(endpoint, WeightsFrame(run, 5, weights.Length), weights);
        worker.Tell(new ComputeGradient(run.ToString("N"), 5, 5, 0, 0, 4, 0, 1), coordinator.Ref);
        _frames.ExpectMsg<TensorArrived>(Long); // version 5 is held
        worker.Tell(new ComputeGradient(run.ToString("N"), 6, 4, 0, 0, 4, 0, 1), coordinator.Ref);
        var mismatch = coordinator.ExpectMsg<VersionMismatch>(Long);
        Assert.Equal((4L, 5L), (mismatch.RequestedVersion, mismatch.HeldVersion));
    }

    [Fact]
    public void NextRun_WithAnotherArchitecture_IsComputedOverTheChannel()
    {
        // The first run leaves sums of its size behind (their frames are written); the second
        // run's network has another parameter count.
        var first = Guid.NewGuid();
        var (worker, coordinator, endpoint) = ChannelWorker(first);
        var weights = Initialization.Create(Net, 4);
        _coordinatorChannel.Send(endpoint, WeightsFrame(first, 1, weights.Length), weights);
        for (var step = 1; step <= 3; step++)
        {
            worker.Tell(new ComputeGradient(first.ToString("N"), step, 1, 0, 0, 4, 0, 1), coordinator.Ref);
            Assert.Equal(Net.ParameterCount, _frames.ExpectMsg<TensorArrived>(Long).Header.Count);
        }
        worker.Tell(new RunFinished(first.ToString("N")), coordinator.Ref);

        var other = new Architecture([3, 5, 4], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy);
        var second = Guid.NewGuid();
        worker.Tell(Setup(second, _coordinatorChannel.Endpoint, other), coordinator.Ref);
        Assert.Equal(endpoint, coordinator.ExpectMsg<SetupAccepted>(Long).TensorEndpoint);
        var otherWeights = Initialization.Create(other, 4);
        _coordinatorChannel.Send(endpoint, WeightsFrame(second, 1, otherWeights.Length), otherWeights);
        worker.Tell(new ComputeGradient(second.ToString("N"), 1, 1, 0, 0, 4, 0, 1), coordinator.Ref);
        var frame = _frames.ExpectMsg<TensorArrived>(Long);
        Assert.Equal((second, other.ParameterCount), (frame.Header.Run, frame.Header.Count));
        var expected = new GradientSum(other.ParameterCount);
        new BatchEngine(other, ChunkSize).Gradient(otherWeights, Data, Shuffling.Permutation(Data.Count, Seed, 0).AsSpan(0, 4), expected);
        AssertSameBits(expected.Values, frame.Payload);
    }
}
