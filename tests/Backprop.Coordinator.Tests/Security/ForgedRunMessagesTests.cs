using System.Text;
using Akka.Actor;
using Akka.Actor.Internal;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Training;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Tests.Security;

/// <summary>
/// A loopback run (coordinator and worker nodes over TCP) while a <see cref="HostileNode"/> that never
/// joined keeps sending it pauses, outcomes and orders: every one is refused, and the run ends with
/// the bits of an unattacked run.
/// </summary>
public sealed class ForgedRunMessagesTests
{
    private static readonly DataSplit Digits = DataSources.Load(new DataOptions("digits"));
    private static readonly FeatureScaling Scaling = FeatureScaling.Fit(ScalingKind.Max, Digits.Train);
    private static readonly DataSet Train = Scaling.Apply(Digits.Train);
    private static readonly DataSet Test = Scaling.Apply(Digits.Test);

    private static readonly TrainingSettings Settings = new(
        new Architecture([64, 32, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy),
        new OptimizerSettings(OptimizerKind.Adam, 0.003f), BatchSize: 32, Epochs: 4, Seed: 5, ChunkSize: 8);

    private static string TypeName<T>() => $"{typeof(T).FullName}, {typeof(T).Assembly.GetName().Name}";

    /// <summary>What the hostile node tells the coordinator and its listener: a pause, an outcome with its own model, a failure.</summary>
    private static object[] ToTheCoordinatorsProcess() =>
    [
        new AsJson(TypeName<PauseTraining>(), Encoding.UTF8.GetBytes("{}")),
        new AsJson(TypeName<TrainingFinished>(), Encoding.UTF8.GetBytes("{\"Version\":1,\"Parameters\":null}")),
        new AsJson(TypeName<TrainingFailed>(), Encoding.UTF8.GetBytes("{\"Reason\":\"forged\"}")),
        new AsControl("", HostileNode.HyperionBytes(new TrainingFailed("forged"))),
        new AsControl("", HostileNode.HyperionBytes(HostileNode.Uninitialized<PauseTraining>())),
    ];

    /// <summary>What it tells a worker: another run's setup, a finish, weights.</summary>
    private static object[] ToAWorker(SetupRun setup) =>
    [
        setup with { RunId = Guid.NewGuid().ToString("N") },           // through the protocol's serializer: arrives, refused by sender
        new RunFinished(Guid.NewGuid().ToString("N")),                  // through the control Hyperion: arrives, refused by sender
        new AsJson(TypeName<WeightsUpdate>(), Encoding.UTF8.GetBytes("{}")),
        new AsProtocol("W", new byte[16]),
    ];

    [Fact]
    public async Task NonMember_SendingPausesOutcomesAndOrdersDuringARun_IsRefused_AndTheRunEndsWithTheUnattackedBits()
    {
        var expected = (await TrainingHost.RunLocalAsync(new TrainingRun(Settings, Train, Test, Scaling), 1, new CoordinatorSettings())).Parameters.Span.ToArray();

        using var hostile = new HostileNode();
        var coordinatorSystem = new TaskCompletionSource<ActorSystem>(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = new TrainingRun(Settings, Train, Test, Scaling);
        // The listener calls back from inside the coordinator node: that is how the test learns the node's address.
        var training = TrainingHost.RunLoopbackAsync(run, 2, new CoordinatorSettings(),
            onEpoch: _ => coordinatorSystem.TrySetResult(InternalCurrentActorCellKeeper.Current!.System));
        var system = await coordinatorSystem.Task;
        var cluster = Akka.Cluster.Cluster.Get(system);
        var coordinator = hostile.Resolve($"{cluster.SelfAddress}/user/{WorkerNode.CoordinatorActorName}");
        var listener = hostile.Resolve($"{cluster.SelfAddress}/user/listener");
        var workers = cluster.State.Members.Where(m => m.HasRole("worker")).Select(m => hostile.Resolve($"{m.Address}/user/{WorkerNode.ActorName}")).ToList();
        Assert.Equal(2, workers.Count);
        var setup = new SetupRun("x", [64, 32, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, 8, 5, Train.Count, Train.ContentHash,
            ScalingKind.Max, FloatTensor.CopyOf(Scaling.Shift), FloatTensor.CopyOf(Scaling.Scale), "127.0.0.1:1");

        var rounds = 0;
        while (!training.IsCompleted)
        {
            var delivered = Task.WhenAll(
                [HostileNode.TellThenSentinelAsync(coordinator, ToTheCoordinatorsProcess()), HostileNode.TellThenSentinelAsync(listener, ToTheCoordinatorsProcess()),
                 .. workers.Select(w => HostileNode.TellThenSentinelAsync(w, ToAWorker(setup)))]);
            if (await Task.WhenAny(delivered, training) == delivered && delivered.IsCompletedSuccessfully) rounds++;
        }
        var finished = await training;
        Assert.True(rounds > 0, "no forged round was delivered while the run was in progress");
        Assert.Equal(expected, finished.Parameters.Span.ToArray());
    }
}
