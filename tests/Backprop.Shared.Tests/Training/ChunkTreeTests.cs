using Backprop.Training;

namespace Backprop.Shared.Tests.Training;

public class ChunkTreeTests
{
    [Theory]
    [InlineData(0, 8, 8, new[] { 0, 8 })]
    [InlineData(0, 5, 5, new[] { 0, 8 })]
    [InlineData(0, 3, 8, new[] { 0, 2, 2, 1 })]
    [InlineData(3, 5, 8, new[] { 3, 1, 4, 4 })]
    [InlineData(2, 3, 5, new[] { 2, 2, 4, 4 })]
    [InlineData(1, 1, 3, new[] { 1, 1 })]
    public void Blocks_Range_DecomposesIntoAlignedTreeNodes(int first, int count, int chunkCount, int[] expected)
    {
        var blocks = ChunkTree.Blocks(first, count, chunkCount).SelectMany(b => new[] { b.Start, b.Size }).ToArray();
        Assert.Equal(expected, blocks);
    }

    [Fact]
    public void Blocks_EveryRangeOfEveryBatch_CoversEachChunkOnceWithAlignedNodes()
    {
        for (var n = 1; n <= 20; n++)
        {
            for (var first = 0; first < n; first++)
            {
                for (var count = 1; first + count <= n; count++)
                {
                    var covered = new List<int>();
                    foreach (var (start, size) in ChunkTree.Blocks(first, count, n))
                    {
                        Assert.True(size > 0 && (size & (size - 1)) == 0, "size is a power of two");
                        Assert.Equal(0, start % size);
                        covered.AddRange(Enumerable.Range(start, size).Where(c => c < n));
                    }
                    Assert.Equal(Enumerable.Range(first, count), covered);
                }
            }
        }
    }

    [Fact]
    public void Reduce_SevenLeaves_AddsInTreeOrder()
    {
        // ((0+1)+(2+3)) + ((4+5)+6), written as strings to see the order.
        var leaves = Enumerable.Range(0, 7).ToDictionary(i => (i, 1), i => new Box(i.ToString()));
        var root = ChunkTree.Reduce(7, leaves, (l, r) => new Box($"({l.Text}+{r.Text})"));
        Assert.Equal("(((0+1)+(2+3))+((4+5)+6))", root.Text);
    }

    [Fact]
    public void Reduce_MissingChunk_Throws()
    {
        var nodes = new Dictionary<(int, int), Box> { [(0, 2)] = new("a") };
        Assert.Throws<ArgumentException>(() => ChunkTree.Reduce(3, nodes, (l, r) => l));
    }

    private sealed record Box(string Text);
}
