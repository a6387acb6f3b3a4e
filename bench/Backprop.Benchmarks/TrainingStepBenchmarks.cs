using BenchmarkDotNet.Attributes;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Benchmarks;

/// <summary>
/// One training step (engine.Gradient over a batch of 256 + SGD update) of the reference nets
/// (bench/nets.tsv) on random data of Fashion-MNIST's shape. The program's <c>step</c> command measures
/// the same on the real data beside PyTorch.
/// </summary>
[ShortRunJob]
[MemoryDiagnoser]
public class TrainingStepBenchmarks : IFlopCount
{
    private const int Batch = 256;
    private BatchEngine? _engine;
    private Optimizer? _optimizer;
    private float[] _θ = [];
    private GradientSum? _sum;
    private DataSet? _data;
    private int[] _order = [];
    private int _position;

    /// <summary>The names of the reference nets.</summary>
    public static IEnumerable<string> Nets => ReferenceNets.All.Select(n => n.Name);

    [ParamsSource(nameof(Nets))]
    public string Net { get; set; } = "784-30-10";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    private Architecture Architecture => ReferenceNets.Find(Net).Architecture;

    /// <summary>Per step: <see cref="StepFlops.PerSample"/> × the batch.</summary>
    public double Flops => StepFlops.PerSample(Architecture) * Batch;

    [GlobalSetup]
    public void Setup()
    {
        var architecture = Architecture;
        const int samples = 16384;
        var random = new Random(1);
        var features = new float[samples * 784];
        for (var i = 0; i < features.Length; i++) features[i] = (float)random.NextDouble();
        var labels = new int[samples];
        for (var i = 0; i < samples; i++) labels[i] = random.Next(10);
        _data = new DataSet("random", features, 784, labels, 10, new SampleOrigin("random", "sample", 0));
        _order = Shuffling.Permutation(samples, 1, 0);
        _engine = new BatchEngine(architecture, chunkSize: 16, Threads);
        _optimizer = Optimizer.Create(architecture, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 0.01f));
        _θ = Initialization.Create(architecture, 1);
        _sum = new GradientSum(architecture.ParameterCount);
    }

    [Benchmark]
    public void Step()
    {
        if (_position + Batch > _order.Length) _position = 0;
        _engine!.Gradient(_θ, _data!, _order.AsSpan(_position, Batch), _sum!);
        _optimizer!.Step(_θ, _sum!.Values, Batch);
        _position += Batch;
    }
}
