using BenchmarkDotNet.Attributes;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Benchmarks;

/// <summary>
/// One optimizer step: element-wise work over the parameters of 784-256-128-10 (235 thousand, which stay
/// in L3 from step to step) and of 784-1024-1024-10 (1.86 million, which come from memory).
/// </summary>
[ShortRunJob]
public class OptimizerBenchmarks
{
    private Optimizer? _optimizer;
    private float[] _θ = [], _sum = [];

    [Params("784-256-128-10", "784-1024-1024-10")]
    public string Net { get; set; } = "";

    [Params(OptimizerKind.Sgd, OptimizerKind.Momentum, OptimizerKind.Adam)]
    public OptimizerKind Kind { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var architecture = ReferenceNets.Find(Net).Architecture;
        _optimizer = Optimizer.Create(architecture, new OptimizerSettings(Kind, LearningRate: 1e-4f, WeightDecay: 1e-4f));
        _θ = Initialization.Create(architecture, seed: 1);
        _sum = new float[_θ.Length];
        var random = new Random(2);
        for (var i = 0; i < _sum.Length; i++) _sum[i] = (float)random.NextDouble() - 0.5f;
    }

    [Benchmark]
    public void Step() => _optimizer!.Step(_θ, _sum, sampleCount: 256);
}
