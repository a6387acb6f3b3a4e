using BenchmarkDotNet.Attributes;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Benchmarks;

/// <summary>One optimizer step over the parameters of 784-1024-1024-10 (1.86 million): memory-bound element-wise work.</summary>
[ShortRunJob]
public class OptimizerBenchmarks
{
    private static readonly Architecture Large = new([784, 1024, 1024, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy);
    private Optimizer? _optimizer;
    private float[] _θ = [], _sum = [];

    [Params(OptimizerKind.Sgd, OptimizerKind.Momentum, OptimizerKind.Adam)]
    public OptimizerKind Kind { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _optimizer = Optimizer.Create(Large, new OptimizerSettings(Kind, LearningRate: 1e-4f, WeightDecay: 1e-4f));
        _θ = Initialization.Create(Large, seed: 1);
        _sum = new float[_θ.Length];
        var random = new Random(2);
        for (var i = 0; i < _sum.Length; i++) _sum[i] = (float)random.NextDouble() - 0.5f;
    }

    [Benchmark]
    public void Step() => _optimizer!.Step(_θ, _sum, sampleCount: 256);
}
