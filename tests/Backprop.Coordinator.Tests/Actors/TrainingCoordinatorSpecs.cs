using Akka.Actor;
using Akka.TestKit;
using Backprop.Coordinator.Actors;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>The coordinator against TestProbe workers. Every message is serialized (serialize-messages = on).</summary>
public sealed class TrainingCoordinatorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly List<float[]> Oracle = TinyRun.OracleVersions();

    private readonly TestProbe _listener;

    public TrainingCoordinatorSpecs() : base(SpecConfig.Serialized) => _listener = CreateTestProbe("listener");

    /// <summary>A coordinator that checks no node (so that the probes get only the requests a spec expects), unless told otherwise.</summary>
    private IActorRef StartCoordinator(CoordinatorSettings? settings = null, double verifyFraction = 0) =>
        Sys.ActorOf(TrainingCoordinator.Props(TinyRun.NewRun(), (settings ?? new CoordinatorSettings(MinWorkers: 2)) with { VerifyFraction = verifyFraction }, _listener.Ref), "coordinator");

    /// <summary>A probe that registers and accepts the setup, as a worker would.</summary>
    private TestProbe Join(IActorRef coordinator, string name)
    {
        var probe = CreateTestProbe(name);
        probe.Send(coordinator, RegisterWorker.Instance);
        var setup = probe.ExpectMsg<SetupRun>();
        Assert.Equal(TinyRun.Data.ContentHash, setup.DataHash);
        Assert.Equal(TinyRun.Architecture, setup.ToArchitecture());
        probe.Reply(new SetupAccepted(setup.RunId));
        return probe;
    }

    /// <summary>A coordinator that needs two workers, and the two, joined.</summary>
    private (IActorRef Coordinator, TestProbe First, TestProbe Second) StartWithTwoWorkers()
    {
        var coordinator = StartCoordinator();
        return (coordinator, Join(coordinator, "w1"), Join(coordinator, "w2"));
    }

    /// <summary>What a worker gets first in a step: the weights, then its request.</summary>
    private static (WeightsUpdate Weights, ComputeGradient Request) FirstRequest(TestProbe worker) =>
        (worker.ExpectMsg<WeightsUpdate>(), worker.ExpectMsg<ComputeGradient>());

    private static void AssertWeights(int version, WeightsUpdate update)
    {
        Assert.Equal(version, update.Version);
        Assert.Equal(Oracle[version], update.Parameters.Span.ToArray()); // bitwise
    }

    /// <summary>Answers every request of one step like a correct worker; returns the requests seen.</summary>
    private static List<ComputeGradient> Serve(TestProbe probe, WeightsUpdate weights, int requests)
    {
        var seen = new List<ComputeGradient>();
        for (var i = 0; i < requests; i++)
        {
            var request = probe.ExpectMsg<ComputeGradient>();
            seen.Add(request);
            probe.Reply(TinyRun.Answer(request, weights.Parameters));
        }
        return seen;
    }

    [Fact]
    public void Step_TwoWorkers_EachGetsTheCurrentWeightsAndItsShard()
    {
        var (_, first, second) = StartWithTwoWorkers();

        AssertWeights(0, first.ExpectMsg<WeightsUpdate>());
        var a = first.ExpectMsg<ComputeGradient>();
        AssertWeights(0, second.ExpectMsg<WeightsUpdate>());
        var b = second.ExpectMsg<ComputeGradient>();

        // Four chunks of 2 samples: chunks [0, 2) to the first worker, [2, 4) to the second.
        Assert.Equal((0L, 0L, 0, 0, 4, 0, 2), (a.Step, a.Version, a.Epoch, a.SampleStart, a.SampleCount, a.NodeStart, a.NodeSize));
        Assert.Equal((0L, 0L, 0, 4, 4, 2, 2), (b.Step, b.Version, b.Epoch, b.SampleStart, b.SampleCount, b.NodeStart, b.NodeSize));
    }

    [Fact]
    public void Step_ResultsIn_AveragesLikeOneProcessAndBroadcastsTheNewWeights()
    {
        var (_, first, second) = StartWithTwoWorkers();

        for (var version = 0; version < 3; version++)
        {
            var w1 = first.ExpectMsg<WeightsUpdate>();
            var w2 = second.ExpectMsg<WeightsUpdate>();
            AssertWeights(version, w1);
            AssertWeights(version, w2);
            Serve(first, w1, 1);
            Serve(second, w2, 1);
        }
        AssertWeights(3, first.ExpectMsg<WeightsUpdate>());
    }

    [Fact]
    public void Result_ForAnOldStep_IsDroppedAndLogged()
    {
        var (_, first, second) = StartWithTwoWorkers();
        var w1 = first.ExpectMsg<WeightsUpdate>();
        var oldRequest = Serve(first, w1, 1)[0];
        Serve(second, second.ExpectMsg<WeightsUpdate>(), 1);

        var v1 = first.ExpectMsg<WeightsUpdate>();
        AssertWeights(1, v1);
        var request = first.ExpectMsg<ComputeGradient>();
        EventFilter.Info(contains: "stale").ExpectOne(() => first.Reply(TinyRun.Answer(oldRequest, w1.Parameters)));
        first.Reply(TinyRun.Answer(request, v1.Parameters));
        Serve(second, second.ExpectMsg<WeightsUpdate>(), 1);
        AssertWeights(2, first.ExpectMsg<WeightsUpdate>());
    }

    [Fact]
    public void Result_Duplicate_IsIgnored()
    {
        var (_, first, second) = StartWithTwoWorkers();
        var (w1, request) = FirstRequest(first);
        var answer = TinyRun.Answer(request, w1.Parameters);
        first.Reply(answer);
        first.Reply(answer);
        Serve(second, second.ExpectMsg<WeightsUpdate>(), 1);
        AssertWeights(1, first.ExpectMsg<WeightsUpdate>()); // counted once
    }

    /// <summary>The first worker answers its node <paramref name="spoiled"/>: the answer is rejected with a warning naming <paramref name="why"/>, and the second worker computes the node.</summary>
    private void AssertRejectedAndRecomputedElsewhere(Func<GradientComputed, GradientComputed> spoiled, string why)
    {
        var (_, first, second) = StartWithTwoWorkers();
        var (w1, request) = FirstRequest(first);
        EventFilter.Warning(contains: why).ExpectOne(() => first.Reply(spoiled(TinyRun.Answer(request, w1.Parameters))));

        var moved = Serve(second, second.ExpectMsg<WeightsUpdate>(), 2);
        Assert.Contains(moved, r => r.NodeStart == 0 && r.NodeSize == 2);
        AssertWeights(1, first.ExpectMsg<WeightsUpdate>());
    }

    [Fact]
    public void Result_OfTheWrongShape_IsRejectedAndRecomputedElsewhere() =>
        AssertRejectedAndRecomputedElsewhere(good => good with { Sum = FloatTensor.CopyOf(good.Sum.Span[..^1]) }, "wrong shape");

    [Fact]
    public void Result_WithNaN_IsRejectedAndRecomputedElsewhere() =>
        AssertRejectedAndRecomputedElsewhere(good =>
        {
            var values = good.Sum.Span.ToArray();
            values[3] = float.NaN;
            return good with { Sum = FloatTensor.CopyOf(values) };
        }, "NaN");

    [Fact]
    public void Worker_ThatStopsMidStep_HasItsShardMoved()
    {
        var (_, first, second) = StartWithTwoWorkers();
        FirstRequest(first);
        var w2 = second.ExpectMsg<WeightsUpdate>();
        Serve(second, w2, 1);

        Sys.Stop(first.Ref);
        var moved = second.ExpectMsg<ComputeGradient>();
        Assert.Equal((0, 2), (moved.NodeStart, moved.NodeSize));
        second.Reply(TinyRun.Answer(moved, w2.Parameters));
        AssertWeights(1, second.ExpectMsg<WeightsUpdate>());
    }

    [Fact]
    public void Worker_ThatNeverAnswers_MissesTheDeadlineAndItsShardMoves()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 2, StepTimeout: TimeSpan.FromMilliseconds(300)));
        var silent = Join(coordinator, "w1");
        var second = Join(coordinator, "w2");
        var (w1, late) = FirstRequest(silent);
        var w2 = second.ExpectMsg<WeightsUpdate>();
        Serve(second, w2, 1);

        ComputeGradient moved = null!;
        EventFilter.Warning(contains: "missed the 0.3 s deadline on").ExpectOne(() => moved = second.ExpectMsg<ComputeGradient>());
        Assert.Equal((0, 2), (moved.NodeStart, moved.NodeSize));
        second.Reply(TinyRun.Answer(moved, w2.Parameters));
        AssertWeights(1, second.ExpectMsg<WeightsUpdate>());

        // The slow worker's answer arrives after all: it is for a finished step and is dropped.
        EventFilter.Info(contains: "stale").ExpectOne(() => silent.Reply(TinyRun.Answer(late, w1.Parameters)));
    }

    [Fact]
    public void NoWorkers_WaitsAndSaysSo_ThenFailsWithTheConfiguredError()
    {
        EventFilter.Warning(contains: "still waiting for workers: 0 of 1").ExpectOne(TimeSpan.FromSeconds(5), () =>
            StartCoordinator(new CoordinatorSettings(MinWorkers: 1, WorkerWaitTimeout: TimeSpan.FromMilliseconds(600), WaitingReportInterval: TimeSpan.FromMilliseconds(400))));
        var failed = _listener.ExpectMsg<TrainingFailed>();
        Assert.Equal("no workers: 0 of 1 needed were ready after 0.6 s", failed.Reason);
    }

    [Fact]
    public void Workers_AllGone_CoordinatorWaitsThenContinuesWithANewOne()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1));
        var first = Join(coordinator, "w1");
        first.ExpectMsg<WeightsUpdate>();
        first.ExpectMsg<ComputeGradient>();
        EventFilter.Info(contains: "waiting for workers").ExpectOne(() => Sys.Stop(first.Ref));

        var second = Join(coordinator, "w2");
        var w = second.ExpectMsg<WeightsUpdate>();
        AssertWeights(0, w);
        Serve(second, w, 1);
        AssertWeights(1, second.ExpectMsg<WeightsUpdate>());
    }

    [Fact]
    public void VersionMismatch_WeightsAndRequestAreSentAgain()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1));
        var worker = Join(coordinator, "w1");
        worker.ExpectMsg<WeightsUpdate>();
        var request = worker.ExpectMsg<ComputeGradient>();
        worker.Reply(new VersionMismatch(request.RunId, request.Step, request.NodeStart, request.NodeSize, request.Version, -1));

        var again = worker.ExpectMsg<WeightsUpdate>();
        AssertWeights(0, again);
        Assert.Equal(request, worker.ExpectMsg<ComputeGradient>());
    }

    [Fact]
    public void PauseThenResume_StopsAfterTheStepAndGoesOn()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1));
        var worker = Join(coordinator, "w1");
        var w0 = worker.ExpectMsg<WeightsUpdate>();
        coordinator.Tell(PauseTraining.Instance);
        Serve(worker, w0, 1);
        Assert.Equal(1, _listener.ExpectMsg<TrainingPaused>().Version);
        worker.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        coordinator.Tell(ResumeTraining.Instance);
        var w1 = worker.ExpectMsg<WeightsUpdate>();
        AssertWeights(1, w1);
        Serve(worker, w1, 1);
    }

    /// <summary>A pause nobody ends ends by itself at CoordinatorSettings.PauseLimit, with a warning naming the limit.</summary>
    [Fact]
    public void Pause_WithoutResume_EndsAtThePauseLimit()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1) { PauseLimit = TimeSpan.FromMilliseconds(300) });
        var worker = Join(coordinator, "w1");
        var w0 = worker.ExpectMsg<WeightsUpdate>();
        coordinator.Tell(PauseTraining.Instance);
        EventFilter.Warning(contains: "the pause limit").ExpectOne(() =>
        {
            Serve(worker, w0, 1);
            Assert.Equal(1, _listener.ExpectMsg<TrainingPaused>().Version);
        });
        var w1 = worker.ExpectMsg<WeightsUpdate>();
        AssertWeights(1, w1);
        Serve(worker, w1, 1);
    }

    /// <summary>Results and setup answers from an actor that is not a worker of the run are refused, once logged, then counted.</summary>
    [Fact]
    public void AnswersFromANonWorker_AreRefused_AndTheRunGoesOnWithItsWorker()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1));
        var worker = Join(coordinator, "w1");
        var (weights, request) = FirstRequest(worker);
        var stranger = CreateTestProbe("stranger");
        var forged = TinyRun.Answer(request, FloatTensor.CopyOf(new float[weights.Parameters.Length]));
        EventFilter.Warning(contains: "refusing a GradientComputed from").ExpectOne(() =>
        {
            coordinator.Tell(forged, stranger.Ref);
            coordinator.Tell(TinyRun.Answer(request, weights.Parameters), stranger.Ref);
        });
        EventFilter.Warning(contains: "refusing a SetupAccepted from").ExpectOne(() => coordinator.Tell(new SetupAccepted(request.RunId), stranger.Ref));
        worker.Reply(TinyRun.Answer(request, weights.Parameters));
        AssertWeights(1, worker.ExpectMsg<WeightsUpdate>());
    }

    /// <summary>The one worker serves the five steps of the first epoch, checking each version's weights.</summary>
    private static void ServeTheFirstEpoch(TestProbe worker)
    {
        for (var version = 0; version < 5; version++)
        {
            var w = worker.ExpectMsg<WeightsUpdate>();
            AssertWeights(version, w);
            Serve(worker, w, 1);
        }
    }

    [Fact]
    public void Run_ToTheEnd_ReportsTheEpochAndFinishesWithTheOracleWeights()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 1));
        var worker = Join(coordinator, "w1");
        ServeTheFirstEpoch(worker);
        var epoch = _listener.ExpectMsg<EpochCompleted>();
        Assert.Equal(1, epoch.Report.Epoch);
        var finished = _listener.ExpectMsg<TrainingFinished>();
        Assert.Equal(5, finished.Version);
        Assert.Equal(Oracle[5], finished.Parameters.Span.ToArray());
        worker.ExpectMsg<RunFinished>();
    }

    [Fact]
    public void TargetAccuracy_Reached_FinishesAfterTheEpochAndAbandonsTheStepAlreadySent()
    {
        var run = TinyRun.NewRun(TinyRun.Settings with { Epochs = 3 });
        var coordinator = Sys.ActorOf(TrainingCoordinator.Props(run, new CoordinatorSettings(MinWorkers: 1, TargetAccuracy: 0.01) { VerifyFraction = 0 }, _listener.Ref), "coordinator");
        var worker = Join(coordinator, "w1");
        ServeTheFirstEpoch(worker);
        // The first step of epoch 2 goes out before the evaluation; the target then ends the run.
        var next = worker.ExpectMsg<WeightsUpdate>();
        var request = worker.ExpectMsg<ComputeGradient>();
        Assert.Equal((5L, 1), (request.Step, request.Epoch));
        var epoch = _listener.ExpectMsg<EpochCompleted>();
        Assert.Equal(1, epoch.Report.Epoch);
        Assert.True(epoch.Report.TestAccuracy >= 0.01);
        var finished = _listener.ExpectMsg<TrainingFinished>();
        Assert.Equal(5, finished.Version);
        Assert.Equal(Oracle[5], finished.Parameters.Span.ToArray());
        Assert.Equal(epoch.Report, finished.LastEpoch); // timing included
        worker.ExpectMsg<RunFinished>();

        // A late answer to the abandoned step changes nothing. The registration behind it is answered
        // only after the answer was handled (one mailbox), so by then anything it caused is queued.
        worker.Reply(TinyRun.Answer(request, next.Parameters));
        worker.Send(coordinator, RegisterWorker.Instance);
        worker.ExpectMsg<RunFinished>();
        _listener.ExpectNoMsg(TimeSpan.Zero);
    }

    // ---- Bad workers -----------------------------------------------------------------------------

    /// <summary>A probe that joins and then answers every request like a correct worker, on its own (an autopilot).</summary>
    private TestProbe JoinServing(IActorRef coordinator, string name, Func<GradientComputed, GradientComputed>? corrupt = null)
    {
        var probe = CreateTestProbe(name);
        WeightsUpdate? weights = null;
        probe.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
        {
            switch (message)
            {
                case SetupRun setup: sender.Tell(new SetupAccepted(setup.RunId), probe.Ref); break;
                case WeightsUpdate update: weights = update; break;
                case ComputeGradient request:
                    var answer = TinyRun.Answer(request, weights!.Parameters);
                    sender.Tell(corrupt is null ? answer : corrupt(answer), probe.Ref);
                    break;
            }
            return AutoPilot.KeepRunning;
        }));
        probe.Send(coordinator, RegisterWorker.Instance);
        return probe;
    }

    [Fact]
    public void Worker_LateMaxStrikesTimesInARow_IsSetAside_AndTheOthersFinishWithTheOracleWeights()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 2, StepTimeout: TimeSpan.FromMilliseconds(300)) { MaxStrikes = 2 });
        var silent = Join(coordinator, "w1");
        JoinServing(coordinator, "w2");

        _listener.ExpectMsg<EpochCompleted>(TimeSpan.FromSeconds(20));
        Assert.Equal(Oracle[5], _listener.ExpectMsg<TrainingFinished>().Parameters.Span.ToArray());
        // It was given a node in steps 0 and 1, missed both deadlines, and got nothing more but the end of the run.
        var seen = silent.ReceiveWhile<object>(TimeSpan.FromMilliseconds(300), m => m);
        Assert.Equal([0L, 1L], seen.OfType<ComputeGradient>().Select(r => r.Step).Distinct());
        Assert.IsType<RunFinished>(seen[^1]);
    }

    [Fact]
    public void Worker_WithWrongGradients_IsShownWrongByTwoOthers_SetAside_AndTheRunEndsWithTheOracleWeights()
    {
        var coordinator = StartCoordinator(new CoordinatorSettings(MinWorkers: 3), verifyFraction: 1);
        var bad = JoinServing(coordinator, "w1", answer => answer with { Sum = FloatTensor.CopyOf([.. answer.Sum.Span.ToArray().Select(v => -20 * v)]) });
        JoinServing(coordinator, "w2");
        JoinServing(coordinator, "w3");

        var finished = _listener.FishForMessage<TrainingFinished>(_ => true, TimeSpan.FromSeconds(20));
        Assert.Equal(Oracle[5], finished.Parameters.Span.ToArray());
        // Shown wrong in the first step: it got requests of step 0 only.
        var requests = bad.ReceiveWhile<object>(TimeSpan.FromMilliseconds(300), m => m).OfType<ComputeGradient>();
        Assert.All(requests, r => Assert.Equal(0, r.Step));
    }
}
