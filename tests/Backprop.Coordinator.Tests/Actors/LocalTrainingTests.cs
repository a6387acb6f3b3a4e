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

    private static float[] SingleProcessOracle()
    {
        var run = new TrainingRun(Settings, Train, Test, Scaling);
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

    [Fact]
    public async Task SerializedMessages_ChangeNothing()
    {
        var config = ConfigurationFactory.ParseString("akka.actor.serialize-messages = on");
        Assert.Equal(SingleProcessOracle(), await TrainWith(3, config));
    }
}
