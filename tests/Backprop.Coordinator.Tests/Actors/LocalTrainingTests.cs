using Akka.Configuration;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Training;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>Local mode end to end: the same weights, bit for bit, for any number of workers.</summary>
public class LocalTrainingTests
{
    private static readonly DataSplit Digits = DataSources.Load(new DataOptions("digits"));
    private static readonly FeatureScaling Scaling = FeatureScaling.Fit(ScalingKind.Max, Digits.Train);
    private static readonly DataSet Train = Scaling.Apply(Digits.Train);
    private static readonly DataSet Test = Scaling.Apply(Digits.Test);
    private static readonly TrainingSettings Settings = new(
        new Architecture([64, 32, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy),
        new OptimizerSettings(OptimizerKind.Adam, 0.003f), BatchSize: 64, Epochs: 2, Seed: 11, ChunkSize: 8);

    private static float[] SingleProcessOracle(TrainingSettings? settings = null)
    {
        settings ??= Settings;
        var run = new TrainingRun(settings, Train, Test, Scaling);
        var engine = new BatchEngine(Settings.Architecture, Settings.ChunkSize);
        var sum = new GradientSum(Settings.Architecture.ParameterCount);
        while (!run.Finished)
        {
            engine.Gradient(run.Parameters, Train, run.CurrentBatch.Span, sum);
            run.Apply(sum);
        }
        return run.Parameters;
    }

    private static async Task<float[]> TrainWith(int workers, Config? config = null)
    {
        var run = new TrainingRun(Settings, Train, Test, Scaling);
        var epochs = new List<EpochReport>();
        var finished = await TrainingHost.RunLocalAsync(run, workers, new CoordinatorSettings(MinWorkers: workers), epochs.Add, config);
        Assert.Equal(2, epochs.Count);
        Assert.Equal(2 * 23, finished.Version); // 1438 samples in batches of 64
        return finished.Parameters.Span.ToArray();
    }

    [Fact]
    public async Task OneToFourWorkers_EndWithTheSameBits_AsTheSingleProcessLoop()
    {
        var expected = SingleProcessOracle();
        for (var workers = 1; workers <= 4; workers++)
        {
            Assert.Equal(expected, await TrainWith(workers));
        }
    }

    [Fact]
    public async Task Loopback_WorkerNodesOverTcp_EndWithTheSameBits()
    {
        var run = new TrainingRun(Settings, Train, Test, Scaling);
        var finished = await TrainingHost.RunLoopbackAsync(run, 2, new CoordinatorSettings());
        Assert.Equal(SingleProcessOracle(), finished.Parameters.Span.ToArray());
    }

    /// <summary>
    /// The target epoch: the first of five whose test accuracy equals the best of the first four,
    /// so a run with that target stops before its last epoch.
    /// </summary>
    private static async Task<(double Target, int Epoch)> TargetFromAFullRun(TrainingSettings settings)
    {
        var epochs = new List<EpochReport>();
        await TrainingHost.RunLocalAsync(new TrainingRun(settings, Train, Test, Scaling), 2, new CoordinatorSettings(MinWorkers: 2), epochs.Add);
        var target = epochs.Take(4).Max(e => e.TestAccuracy);
        return (target, epochs.First(e => e.TestAccuracy >= target).Epoch);
    }

    [Fact]
    public async Task TargetAccuracy_StopsAtTheFirstEpochThatReachesIt_WithTheWeightsOfExactlyThoseEpochs()
    {
        var settings = Settings with { Epochs = 5, Optimizer = new OptimizerSettings(OptimizerKind.Sgd, 0.05f) };
        var (target, epoch) = await TargetFromAFullRun(settings);

        var epochs = new List<EpochReport>();
        var run = new TrainingRun(settings, Train, Test, Scaling);
        var finished = await TrainingHost.RunLocalAsync(run, 2, new CoordinatorSettings(MinWorkers: 2, TargetAccuracy: target), epochs.Add);

        Assert.Equal(Enumerable.Range(1, epoch), epochs.Select(e => e.Epoch));
        Assert.Equal(epoch, finished.LastEpoch!.Epoch);
        Assert.Equal(target, finished.LastEpoch.TestAccuracy);
        Assert.Equal(epoch * 23, finished.Version); // the step already sent out for the next epoch was abandoned
        Assert.Equal(SingleProcessOracle(settings with { Epochs = epoch }), finished.Parameters.Span.ToArray());
        // The time-to-accuracy clock runs from the first step and includes every epoch's training time.
        Assert.True(epochs.Zip(epochs.Skip(1)).All(p => p.First.SinceStart < p.Second.SinceStart));
        Assert.True(epochs.Sum(e => e.Elapsed.Ticks) <= epochs[^1].SinceStart.Ticks);
    }

    [Fact]
    public async Task TargetAccuracy_OverLoopback_StopsCleanlyWithTheSameBits()
    {
        var settings = Settings with { Epochs = 5, Optimizer = new OptimizerSettings(OptimizerKind.Sgd, 0.05f) };
        var (target, epoch) = await TargetFromAFullRun(settings);
        var run = new TrainingRun(settings, Train, Test, Scaling);
        var finished = await TrainingHost.RunLoopbackAsync(run, 2, new CoordinatorSettings(TargetAccuracy: target));
        Assert.Equal(epoch, finished.LastEpoch!.Epoch);
        Assert.Equal(SingleProcessOracle(settings with { Epochs = epoch }), finished.Parameters.Span.ToArray());
    }

    [Fact]
    public async Task SerializedMessages_ChangeNothing()
    {
        var config = ConfigurationFactory.ParseString("akka.actor.serialize-messages = on");
        Assert.Equal(SingleProcessOracle(), await TrainWith(3, config));
    }
}
