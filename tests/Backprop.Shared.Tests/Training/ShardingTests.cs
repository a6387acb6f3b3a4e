using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Shared.Tests.Training;

/// <summary>The property the coordinator relies on: shard sums combine to the whole batch's sum.</summary>
public class ShardingTests
{
    private static readonly (Architecture Architecture, float[] Parameters) Net =
        TestNets.Network([8, 10, 4], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy, seed: 5);
    private static readonly DataSet Data = TestNets.Data(61, 8, 4, seed: 3);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(7)]
    public void ChunkAlignedShards_AnyWorkerCount_ReduceToTheSameBitsAsTheWholeBatch(int workers)
    {
        const int chunkSize = 4;
        var (architecture, θ) = Net;
        var batch = Enumerable.Range(0, Data.Count).Reverse().ToArray(); // any order of samples
        var chunkCount = ChunkTree.ChunkCount(batch.Length, chunkSize);
        var engine = new BatchEngine(architecture, chunkSize);
        var whole = new GradientSum(architecture.ParameterCount);
        engine.Gradient(θ, Data, batch, whole);

        // Give each worker a contiguous range of chunks; each sends one sum per tree node it covers.
        var nodes = new Dictionary<(int Start, int Size), GradientSum>();
        for (var w = 0; w < workers; w++)
        {
            int first = w * chunkCount / workers, end = (w + 1) * chunkCount / workers;
            if (end == first) continue;
            foreach (var (start, size) in ChunkTree.Blocks(first, end - first, chunkCount))
            {
                var samples = batch.AsSpan()[(start * chunkSize)..Math.Min((start + size) * chunkSize, batch.Length)];
                var sum = new GradientSum(architecture.ParameterCount);
                new BatchEngine(architecture, chunkSize).Gradient(θ, Data, samples, sum);
                nodes.Add((start, size), sum);
            }
        }
        var reduced = ChunkTree.Reduce(chunkCount, nodes, (left, right) => { left.Add(right); return left; });

        Assert.Equal(whole.Values, reduced.Values); // bitwise
        Assert.Equal(whole.LossSum, reduced.LossSum);
        Assert.Equal(whole.SampleCount, reduced.SampleCount);
        Assert.Equal(whole.CorrectCount, reduced.CorrectCount);
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 3)]
    public void ChunkAlignedShards_WorkersWithOtherThreadCountsAndBlockSizes_ReduceToTheSameBits(int workers, int threads)
    {
        // The whole batch on one thread in blocks of 8 chunks; workers on other thread counts in blocks of 2 chunks.
        const int chunkSize = 3;
        var (architecture, θ) = Net;
        var batch = Enumerable.Range(0, Data.Count).Select(i => (i * 17) % Data.Count).ToArray();
        var chunkCount = ChunkTree.ChunkCount(batch.Length, chunkSize);
        var whole = new GradientSum(architecture.ParameterCount);
        new BatchEngine(architecture, chunkSize, 1, Kernels.DefaultWidth, 8 * chunkSize).Gradient(θ, Data, batch, whole);

        var nodes = new Dictionary<(int Start, int Size), GradientSum>();
        for (var w = 0; w < workers; w++)
        {
            int first = w * chunkCount / workers, end = (w + 1) * chunkCount / workers;
            var engine = new BatchEngine(architecture, chunkSize, threads, Kernels.DefaultWidth, 2 * chunkSize);
            foreach (var (start, size) in ChunkTree.Blocks(first, end - first, chunkCount))
            {
                var sum = new GradientSum(architecture.ParameterCount);
                engine.Gradient(θ, Data, batch.AsSpan()[(start * chunkSize)..Math.Min((start + size) * chunkSize, batch.Length)], sum);
                nodes.Add((start, size), sum);
            }
        }
        var reduced = ChunkTree.Reduce(chunkCount, nodes, (left, right) => { left.Add(right); return left; });

        Assert.Equal(whole.Values, reduced.Values); // bitwise
        Assert.Equal(whole.LossSum, reduced.LossSum);
        Assert.Equal(whole.CorrectCount, reduced.CorrectCount);
    }

    [Theory]
    [InlineData(new[] { 61 })]
    [InlineData(new[] { 1, 60 })]
    [InlineData(new[] { 30, 31 })]
    [InlineData(new[] { 5, 17, 2, 37 })]
    [InlineData(new[] { 13, 13, 13, 13, 9 })]
    public void ArbitraryShards_CombinedWeightedByCount_GiveTheWholeBatchAverage(int[] shardSizes)
    {
        var (architecture, θ) = Net;
        var engine = new BatchEngine(architecture, chunkSize: 8);
        var whole = new GradientSum(architecture.ParameterCount);
        var all = Enumerable.Range(0, Data.Count).ToArray();
        engine.Gradient(θ, Data, all, whole);

        var combined = new GradientSum(architecture.ParameterCount);
        var offset = 0;
        foreach (var size in shardSizes)
        {
            var shard = new GradientSum(architecture.ParameterCount);
            engine.Gradient(θ, Data, all.AsSpan(offset, size), shard);
            combined.Add(shard);
            offset += size;
        }

        // Averages (sum / total count) agree to float rounding: 1e-5 · max(1, |g|).
        Assert.Equal(whole.SampleCount, combined.SampleCount);
        Assert.Equal(whole.CorrectCount, combined.CorrectCount);
        for (var p = 0; p < whole.Values.Length; p++)
        {
            var expected = whole.Values[p] / whole.SampleCount;
            var actual = combined.Values[p] / combined.SampleCount;
            Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"parameter {p}: {actual} vs {expected}");
        }
        Assert.Equal(whole.LossSum / whole.SampleCount, combined.LossSum / combined.SampleCount, 5);
    }
}
