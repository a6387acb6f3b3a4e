using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;
using MathNet.Numerics.Random;

namespace Backprop.Runtime.Tests.Worker;

/// <summary>The worker actor against a TestKit coordinator. Every message is serialized (serialize-messages = on).</summary>
public sealed class GradientWorkerSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config SpecConfig = ConfigurationFactory.ParseString("""
        akka.loglevel = INFO
        akka.actor.serialize-messages = on
        """).WithFallback(ProtocolConfig.Serialization);

    private static readonly Architecture Net = new([3, 6, 4], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy);
    private static readonly DataSet Data = MakeData(30, seed: 2);
    private const int ChunkSize = 4, Seed = 9;

    public GradientWorkerSpecs() : base(SpecConfig) { }

    private static DataSet MakeData(int n, int seed)
    {
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        var features = new float[n * 3];
        for (var i = 0; i < features.Length; i++) features[i] = (float)random.NextDouble();
        var labels = new int[n];
        for (var i = 0; i < n; i++) labels[i] = random.Next(4);
        return new DataSet("w", features, 3, labels, 4, new SampleOrigin("w", "sample", 0));
    }

    private static SetupRun Setup(string hash) => new(
        "run-1", [.. Net.Sizes], Net.Hidden, Net.Output, Net.Cost, ChunkSize, Seed, Data.Count, hash,
        ScalingKind.None, FloatTensor.CopyOf(new float[3]), FloatTensor.CopyOf([1f, 1f, 1f]));

    private IActorRef StartWorker(DataSet data) => Sys.ActorOf(GradientWorker.Props(TestActor, _ => data, threads: 1));

    private IActorRef ReadyWorker(out float[] weights)
    {
        var worker = StartWorker(Data);
        ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Data.ContentHash));
        ExpectMsg<SetupAccepted>(m => Assert.Equal("run-1", m.RunId));
        weights = Initialization.Create(Net, 4);
        worker.Tell(new WeightsUpdate("run-1", 7, FloatTensor.CopyOf(weights)));
        return worker;
    }

    /// <summary>Setup, weights, work and finish are taken from the worker's coordinator only; refusals are logged once per sender and kind.</summary>
    [Fact]
    public void OrdersFromAnotherActor_AreRefused_AndLoggedOncePerSenderAndKind()
    {
        var worker = StartWorker(Data);
        ExpectMsg<RegisterWorker>();
        var stranger = CreateTestProbe("stranger");
        EventFilter.Warning(contains: "refusing a SetupRun from").ExpectOne(() =>
        {
            worker.Tell(Setup(Data.ContentHash), stranger.Ref);
            worker.Tell(Setup(Data.ContentHash), stranger.Ref); // counted, not logged
        });
        worker.Tell(Setup(Data.ContentHash));
        ExpectMsg<SetupAccepted>(m => Assert.Equal("run-1", m.RunId));

        var weights = Initialization.Create(Net, 4);
        EventFilter.Warning(contains: "refusing a RunFinished from").ExpectOne(() => worker.Tell(new RunFinished("run-1"), stranger.Ref));
        EventFilter.Warning(contains: "refusing a WeightsUpdate from").ExpectOne(() => worker.Tell(new WeightsUpdate("run-1", 7, FloatTensor.CopyOf(weights)), stranger.Ref));
        EventFilter.Warning(contains: "refusing a ComputeGradient from").ExpectOne(() =>
            worker.Tell(new ComputeGradient("run-1", 7, 7, 0, 0, 8, 0, 2), stranger.Ref));
        // The run goes on with its coordinator: the stranger's finish did not end it, its weights were not taken.
        worker.Tell(new WeightsUpdate("run-1", 7, FloatTensor.CopyOf(weights)));
        worker.Tell(new ComputeGradient("run-1", 7, 7, 0, 0, 8, 0, 2));
        Assert.Equal(7L, ExpectMsg<GradientComputed>().Version);
        stranger.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void WorkerInARun_RefusesAnotherRun_UntilItsRunIsFinished()
    {
        var worker = StartWorker(Data);
        ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Data.ContentHash));
        ExpectMsg<SetupAccepted>();
        worker.Tell(Setup(Data.ContentHash) with { RunId = "run-2" });
        Assert.Contains("another run", ExpectMsg<SetupRefused>(m => Assert.Equal("run-2", m.RunId)).Reason);
        worker.Tell(new RunFinished("run-1"));
        worker.Tell(Setup(Data.ContentHash) with { RunId = "run-2" });
        ExpectMsg<SetupAccepted>(m => Assert.Equal("run-2", m.RunId));
    }

    [Fact]
    public void Start_RegistersWithItsCoordinator()
    {
        StartWorker(Data);
        ExpectMsg<RegisterWorker>();
    }

    [Fact]
    public void Compute_GivesTheEngineGradientOfTheRequestedSamples()
    {
        var worker = ReadyWorker(out var weights);
        worker.Tell(new ComputeGradient("run-1", 7, 7, Epoch: 2, SampleStart: 8, SampleCount: 8, NodeStart: 2, NodeSize: 2));
        var result = ExpectMsg<GradientComputed>();

        var order = Shuffling.Permutation(Data.Count, Seed, 2);
        var expected = new GradientSum(Net.ParameterCount);
        new BatchEngine(Net, ChunkSize).Gradient(weights, Data, order.AsSpan(8, 8), expected);
        Assert.Equal(("run-1", 7L, 7L, 2, 2), (result.RunId, result.Step, result.Version, result.NodeStart, result.NodeSize));
        Assert.Equal(expected.Values, result.Sum.Span.ToArray()); // bitwise
        Assert.Equal(8, result.SampleCount);
        Assert.Equal(expected.LossSum, result.LossSum);
        Assert.Equal(expected.CorrectCount, result.CorrectCount);
    }

    [Fact]
    public void Compute_ForAnOlderVersionThanItHolds_AnswersVersionMismatchAndComputesNothing()
    {
        var worker = ReadyWorker(out _);
        worker.Tell(new ComputeGradient("run-1", 8, 6, 0, 0, 4, 0, 1));
        var mismatch = ExpectMsg<VersionMismatch>();
        Assert.Equal((6L, 7L), (mismatch.RequestedVersion, mismatch.HeldVersion));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void Compute_ForANewerVersion_WaitsForItsWeights()
    {
        var worker = ReadyWorker(out _);
        worker.Tell(new ComputeGradient("run-1", 8, 8, 0, 0, 4, 0, 1));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var newer = Initialization.Create(Net, 5);
        worker.Tell(new WeightsUpdate("run-1", 8, FloatTensor.CopyOf(newer)));
        var result = ExpectMsg<GradientComputed>();
        Assert.Equal((8L, 8L), (result.Step, result.Version));
        var expected = new GradientSum(Net.ParameterCount);
        new BatchEngine(Net, ChunkSize).Gradient(newer, Data, Shuffling.Permutation(Data.Count, Seed, 0).AsSpan(0, 4), expected);
        Assert.Equal(expected.Values, result.Sum.Span.ToArray()); // bitwise
    }

    [Fact]
    public void Compute_WaitingForWeights_IsDroppedWhenTheRunFinishes()
    {
        var worker = ReadyWorker(out _);
        worker.Tell(new ComputeGradient("run-1", 8, 8, 0, 0, 4, 0, 1));
        worker.Tell(new RunFinished("run-1"));
        worker.Tell(Setup(Data.ContentHash));
        ExpectMsg<SetupAccepted>();
        worker.Tell(new WeightsUpdate("run-1", 8, FloatTensor.CopyOf(Initialization.Create(Net, 5))));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // the stashed request went with the old run
    }

    [Fact]
    public void Setup_WithOtherData_IsRefusedNamingBothHashes()
    {
        var other = MakeData(30, seed: 3);
        var worker = StartWorker(other);
        ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Data.ContentHash));
        var refused = ExpectMsg<SetupRefused>();
        Assert.Contains(Data.ContentHash, refused.Reason);
        Assert.Contains(other.ContentHash, refused.Reason);
    }

    [Fact]
    public void Setup_ModelTooLargeForTheFrame_IsRefusedNamingTheSizes()
    {
        var worker = Sys.ActorOf(GradientWorker.Props(TestActor, _ => Data, threads: 1, maximumFrameBytes: 40_000));
        ExpectMsg<RegisterWorker>();
        worker.Tell(Setup(Data.ContentHash));
        var refused = ExpectMsg<SetupRefused>();
        Assert.Contains("need messages of 65,744 bytes, more than this worker's maximum frame of 40,000 bytes", refused.Reason);
    }

    [Fact]
    public void Compute_SamplesOutsideTheData_IsRefusedWithALogLine()
    {
        var worker = ReadyWorker(out _);
        EventFilter.Error(contains: "outside the 30 training samples").ExpectOne(() =>
            worker.Tell(new ComputeGradient("run-1", 7, 7, 0, 28, 8, 0, 2)));
    }

    [Fact]
    public void Compute_ForAnotherRun_IsIgnored()
    {
        var worker = ReadyWorker(out _);
        EventFilter.Warning(contains: "ignoring work for run other").ExpectOne(() =>
            worker.Tell(new ComputeGradient("other", 7, 7, 0, 0, 4, 0, 1)));
        ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }
}
