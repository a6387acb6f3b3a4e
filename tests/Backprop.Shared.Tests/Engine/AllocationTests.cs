using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Shared.Tests.Engine;

/// <summary>Runs alone: nothing else allocates on the team's threads while it counts.</summary>
[CollectionDefinition(nameof(AllocationCounting), DisableParallelization = true)]
public sealed class AllocationCounting;

[Collection(nameof(AllocationCounting))]
public class AllocationTests
{
    [Theory]
    [InlineData(1, OptimizerKind.Sgd)]
    [InlineData(3, OptimizerKind.Sgd)]
    [InlineData(2, OptimizerKind.Adam)]
    public void TrainingStep_SteadyState_AllocatesNothing(int threads, OptimizerKind kind)
    {
        var (architecture, θ) = TestNets.Network([50, 40, 30, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, seed: 8);
        var data = TestNets.Data(700, 50, 10, seed: 9);
        var order = Enumerable.Range(0, data.Count).Reverse().ToArray();
        var engine = new BatchEngine(architecture, chunkSize: 16, threads);
        var optimizer = Optimizer.Create(architecture, new OptimizerSettings(kind, LearningRate: 0.01f));
        var sum = new GradientSum(architecture.ParameterCount);
        // Batches of 300 (two blocks: the block sums are merged too) at moving offsets.
        void Step(int step)
        {
            engine.Gradient(θ, data, order.AsSpan(step % 4 * 100, 300), sum);
            optimizer.Step(θ, sum.Values, sum.SampleCount);
        }
        for (var step = 0; step < 8; step++) Step(step); // warm-up: buffers, helper threads, JIT

        var caller = GC.GetAllocatedBytesForCurrentThread();
        var helpers = engine.HelperAllocatedBytes;
        for (var step = 0; step < 20; step++) Step(step);

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - caller);
        Assert.Equal(0, engine.HelperAllocatedBytes - helpers);
    }
}
