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

    [Theory]
    [InlineData(3, new[] { 0, 2 }, "no sum covers chunk 2")]                    // the last chunk
    [InlineData(5, new[] { 0, 2, 3, 1, 4, 1 }, "no sum covers chunk 2")]       // one in the middle
    [InlineData(4, new[] { 1, 1, 2, 2 }, "no sum covers chunk 0")]             // the first
    [InlineData(4, new[] { 0, 2, 1, 1, 2, 2 }, "two sums cover chunk 1")]      // a node inside another
    [InlineData(4, new[] { 0, 4, 0, 2 }, "two sums cover chunk 0")]            // two nodes at one start
    [InlineData(4, new[] { 0, 2, 2, 1, 3, 1, 4, 1 }, "(4, 1) is not a node")]  // past the last chunk
    [InlineData(6, new[] { 0, 2, 2, 3, 5, 1 }, "(2, 3) is not a node")]        // not a power of two
    [InlineData(6, new[] { 0, 1, 1, 2, 3, 3 }, "(1, 2) is not a node")]        // not aligned
    public void Reduce_NodesThatDoNotCoverEveryChunkOnce_AreRefusedNamingTheChunkOrNode(int chunkCount, int[] startsAndSizes, string message)
    {
        var nodes = Enumerable.Range(0, startsAndSizes.Length / 2).ToDictionary(i => (startsAndSizes[2 * i], startsAndSizes[2 * i + 1]), i => new Box($"{i}"));
        var refused = Assert.Throws<ArgumentException>(() => ChunkTree.Reduce(chunkCount, nodes, (l, r) => l));
        Assert.Contains(message, refused.Message);
    }

    /// <summary>
    /// Chunks pushed one by one onto the counter add up exactly as the recursive definition of
    /// <see cref="ChunkTree"/>: the sums are written out as text, so any other order or grouping shows.
    /// </summary>
    [Fact]
    public void Counter_Chunks_AddLikeTheRecursiveDefinition_ForEveryChunkCountUpTo40()
    {
        for (var n = 1; n <= 40; n++)
        {
            var slots = new TextSlots(new string[8]);
            var tree = new ChunkTreeCounter();
            for (var chunk = 0; chunk < n; chunk++)
            {
                slots.Text[tree.Depth] = $"{chunk}";
                tree.Push(ref slots);
            }
            tree.Fold(ref slots);
            Assert.Equal(Definition(0, ChunkTree.RootSize(n), n), slots.Text[0]);
            Assert.Equal(1, tree.Depth);
        }
    }

    /// <summary>
    /// Any cover of the chunks by aligned nodes (each node's sum its own subtree, as a worker would send
    /// it), pushed in order at their levels, gives the root of the recursive definition: every cover for
    /// up to 12 chunks, 200 random ones each for 13 to 40, through <see cref="ChunkTree.Reduce"/> too.
    /// </summary>
    [Fact]
    public void Counter_AnyCoverByAlignedNodes_AddsLikeTheRecursiveDefinition_ForEveryChunkCountUpTo40()
    {
        var random = new Random(7);
        for (var n = 1; n <= 40; n++)
        {
            var root = ChunkTree.RootSize(n);
            var expected = Definition(0, root, n);
            var covers = n <= 12 ? Covers(0, root, n).ToList() : Enumerable.Range(0, 200).Select(_ => RandomCover(0, root, n, random)).ToList();
            foreach (var cover in covers)
            {
                var slots = new TextSlots(new string[8]);
                var tree = new ChunkTreeCounter();
                foreach (var (start, size) in cover)
                {
                    slots.Text[tree.Depth] = Definition(start, size, n);
                    tree.Push(ref slots, System.Numerics.BitOperations.Log2((uint)size));
                }
                tree.Fold(ref slots);
                Assert.Equal(expected, slots.Text[0]);

                var nodes = cover.ToDictionary(node => node, node => new Box(Definition(node.Start, node.Size, n)));
                Assert.Equal(expected, ChunkTree.Reduce(n, nodes, (l, r) => new Box($"({l.Text}+{r.Text})")).Text);
            }
        }
    }

    /// <summary>The recursive definition: node(start, size) = left half + right half, or the left half alone when the right one lies past the last chunk.</summary>
    private static string Definition(int start, int size, int chunkCount)
    {
        if (size == 1) return $"{start}";
        var left = Definition(start, size / 2, chunkCount);
        return start + size / 2 >= chunkCount ? left : $"({left}+{Definition(start + size / 2, size / 2, chunkCount)})";
    }

    /// <summary>Every cover of the chunks of node (start, size) by aligned nodes, in order: the node itself, or covers of its halves.</summary>
    private static IEnumerable<List<(int Start, int Size)>> Covers(int start, int size, int chunkCount)
    {
        if (start >= chunkCount)
        {
            yield return [];
            yield break;
        }
        yield return [(start, size)];
        if (size == 1) yield break;
        foreach (var left in Covers(start, size / 2, chunkCount))
        {
            foreach (var right in Covers(start + size / 2, size / 2, chunkCount)) yield return [.. left, .. right];
        }
    }

    private static List<(int Start, int Size)> RandomCover(int start, int size, int chunkCount, Random random)
    {
        if (start >= chunkCount) return [];
        if (size == 1 || random.Next(3) == 0) return [(start, size)];
        return [.. RandomCover(start, size / 2, chunkCount, random), .. RandomCover(start + size / 2, size / 2, chunkCount, random)];
    }

    /// <summary>Slots that write each addition out: "(left+right)".</summary>
    private readonly struct TextSlots(string[] text) : IChunkTreeSlots
    {
        public string[] Text { get; } = text;

        public void Add(int left, int right) => Text[left] = $"({Text[left]}+{Text[right]})";
    }

    private sealed record Box(string Text);
}
