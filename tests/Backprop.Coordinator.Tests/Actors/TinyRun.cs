using Backprop.Coordinator.Training;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;
using MathNet.Numerics.Random;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>
/// A small training run for protocol tests: 40 samples, a 4-5-3 network, batches of 8 in chunks
/// of 2 (four chunks per step), one epoch of 5 steps. Also the oracle: the same run stepped
/// directly with the engine, as a single process would.
/// </summary>
internal sealed class TinyRun
{
    public static readonly Architecture Architecture = new([4, 5, 3], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy);
    public static readonly DataSet Data = MakeData();
    public static readonly TrainingSettings Settings = new(Architecture, new OptimizerSettings(OptimizerKind.Sgd, 0.1f), BatchSize: 8, Epochs: 1, Seed: 3, ChunkSize: 2);

    public static TrainingRun NewRun(TrainingSettings? settings = null) => new(settings ?? Settings, Data, Data);

    private static DataSet MakeData()
    {
        var random = new Xoshiro256StarStar(17, threadSafe: false);
        var features = new float[40 * 4];
        for (var i = 0; i < features.Length; i++) features[i] = (float)(2 * random.NextDouble() - 1);
        var labels = new int[40];
        for (var i = 0; i < labels.Length; i++) labels[i] = random.Next(3);
        return new DataSet("tiny", features, 4, labels, 3, new SampleOrigin("tiny", "sample", 0));
    }

    /// <summary>Weights after each number of steps, computed without actors.</summary>
    public static List<float[]> OracleVersions(TrainingSettings? settings = null)
    {
        var run = NewRun(settings);
        var engine = new BatchEngine(run.Settings.Architecture, run.Settings.ChunkSize);
        var sum = new GradientSum(run.Settings.Architecture.ParameterCount);
        var versions = new List<float[]> { (float[])run.Parameters.Clone() };
        while (!run.Finished)
        {
            engine.Gradient(run.Parameters, run.Train, run.CurrentBatch.Span, sum);
            run.Apply(sum);
            versions.Add((float[])run.Parameters.Clone());
        }
        return versions;
    }

    /// <summary>What a correct worker answers to <paramref name="request"/> given the weights it holds.</summary>
    public static GradientComputed Answer(ComputeGradient request, FloatTensor weights)
    {
        var order = Shuffling.Permutation(Data.Count, Settings.Seed, request.Epoch);
        var sum = new GradientSum(Architecture.ParameterCount);
        new BatchEngine(Architecture, Settings.ChunkSize).Gradient(weights.Span, Data, order.AsSpan(request.SampleStart, request.SampleCount), sum);
        return new GradientComputed(request.RunId, request.Step, request.Version, request.NodeStart, request.NodeSize,
            sum.SampleCount, sum.LossSum, sum.CorrectCount, FloatTensor.CopyOf(sum.Values));
    }
}
