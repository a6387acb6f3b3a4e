namespace Backprop.Training;

/// <summary>
/// The fixed order in which chunk gradients are added, so that the result is the same bits however
/// a batch is spread over workers.
/// </summary>
/// <remarks>
/// A batch is cut into chunks of a fixed number of samples (the last may be short), independent of
/// the number of workers. Chunk sums are added along a binary tree over chunk indices: the node
/// (start, size), size a power of two and start a multiple of it, covers chunks
/// [start, start + size) and its sum is node(start, size/2) + node(start + size/2, size/2), or just
/// the left half when the right half lies past the last chunk. A worker that owns an aligned block
/// of chunks adds them into that node itself and sends one sum; the coordinator adds the nodes it
/// receives up to the root. Floating-point addition of two given values is exact and
/// deterministic, so the root is the same bits for any assignment of blocks.
/// </remarks>
public static class ChunkTree
{
    /// <summary>The number of chunks of a batch of <paramref name="batchSize"/> samples.</summary>
    public static int ChunkCount(int batchSize, int chunkSize) => (batchSize + chunkSize - 1) / chunkSize;

    /// <summary>The smallest power of two ≥ n (n ≥ 1): the size of the root node.</summary>
    public static int RootSize(int chunkCount) => chunkCount <= 1 ? 1 : (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)chunkCount);

    /// <summary>
    /// The tree nodes that exactly cover chunks [first, first + count) of a batch of
    /// <paramref name="chunkCount"/> chunks, largest first; a range that reaches the last chunk may
    /// use nodes that extend past it.
    /// </summary>
    public static List<(int Start, int Size)> Blocks(int first, int count, int chunkCount)
    {
        if (first < 0 || count < 1 || first + count > chunkCount) throw new ArgumentOutOfRangeException(nameof(count), $"chunks [{first}, {first + count}) of {chunkCount}");
        var end = first + count == chunkCount ? RootSize(chunkCount) : first + count;
        var blocks = new List<(int, int)>();
        var position = first;
        while (position < end && position < chunkCount)
        {
            var size = position == 0 ? RootSize(chunkCount) : position & -position; // the largest aligned size at this position
            while (position + size > end) size >>= 1;
            blocks.Add((position, size));
            position += size;
        }
        return blocks;
    }

    /// <summary>
    /// The root sum of a batch of <paramref name="chunkCount"/> chunks from node sums that cover
    /// every chunk exactly once. <paramref name="add"/> is left ← left + right and may reuse left.
    /// </summary>
    public static T Reduce<T>(int chunkCount, IReadOnlyDictionary<(int Start, int Size), T> nodes, Func<T, T, T> add)
        where T : class =>
        Node(0, RootSize(chunkCount), chunkCount, nodes, add)
        ?? throw new ArgumentException("the nodes do not cover chunk 0", nameof(nodes));

    private static T? Node<T>(int start, int size, int chunkCount, IReadOnlyDictionary<(int, int), T> nodes, Func<T, T, T> add)
        where T : class
    {
        if (start >= chunkCount) return null;
        if (nodes.TryGetValue((start, size), out var sum)) return sum;
        if (size == 1) throw new ArgumentException($"no sum covers chunk {start}", nameof(nodes));
        var left = Node(start, size / 2, chunkCount, nodes, add)!;
        var right = Node(start + size / 2, size / 2, chunkCount, nodes, add);
        return right is null ? left : add(left, right);
    }
}
