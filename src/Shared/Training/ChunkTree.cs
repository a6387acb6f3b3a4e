using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

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
/// deterministic, so the root is the same bits for any assignment of blocks. Every such sum is taken
/// by a <see cref="ChunkTreeCounter"/>.
/// </remarks>
public static class ChunkTree
{
    /// <summary>The number of chunks of a batch of <paramref name="batchSize"/> samples.</summary>
    public static int ChunkCount(int batchSize, int chunkSize) => (batchSize + chunkSize - 1) / chunkSize;

    /// <summary>The smallest power of two ≥ n (n ≥ 1): the size of the root node.</summary>
    public static int RootSize(int chunkCount) => chunkCount <= 1 ? 1 : (int)BitOperations.RoundUpToPowerOf2((uint)chunkCount);

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
    /// <exception cref="ArgumentException">A key is not a node of the tree, or the nodes leave a chunk out or cover one twice.</exception>
    public static T Reduce<T>(int chunkCount, IReadOnlyDictionary<(int Start, int Size), T> nodes, Func<T, T, T> add)
        where T : class
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkCount, 1);
        var rootSize = RootSize(chunkCount);
        var slots = new NodeSlots<T>(new T[BitOperations.Log2((uint)rootSize) + 1], add);
        var tree = new ChunkTreeCounter();
        var next = 0; // the first chunk no node has covered yet
        foreach (var ((start, size), sum) in nodes.OrderBy(node => node.Key.Start))
        {
            if (size < 1 || size > rootSize || !BitOperations.IsPow2(size) || start % size != 0 || start >= chunkCount)
                throw new ArgumentException($"({start}, {size}) is not a node of the chunk tree of {chunkCount} chunks", nameof(nodes));
            if (start > next) throw new ArgumentException($"no sum covers chunk {next}", nameof(nodes));
            if (start < next) throw new ArgumentException($"two sums cover chunk {start}", nameof(nodes));
            slots.Sums[tree.Depth] = sum;
            tree.Push(ref slots, BitOperations.Log2((uint)size));
            next = start + size;
        }
        if (next < chunkCount) throw new ArgumentException($"no sum covers chunk {next}", nameof(nodes));
        tree.Fold(ref slots);
        return slots.Sums[0];
    }

    /// <summary>The coordinator's slots: one node sum per slot, added by the caller's <c>add</c>.</summary>
    private readonly struct NodeSlots<T>(T[] sums, Func<T, T, T> add) : IChunkTreeSlots
    {
        public T[] Sums { get; } = sums;

        public void Add(int left, int right) => Sums[left] = add(Sums[left], Sums[right]);
    }
}

/// <summary>
/// Where a <see cref="ChunkTreeCounter"/> keeps its partial sums: slot d holds the d-th entry of its
/// stack, as a double, a row of floats, a micro-tile or a whole gradient sum.
/// </summary>
/// <remarks>
/// Implemented by structs and passed as a generic argument, so that the JIT compiles the counter once
/// per kind of slot with <see cref="Add"/> inlined: no interface call per addition in the engine's loops.
/// </remarks>
internal interface IChunkTreeSlots
{
    /// <summary>slot[left] ← slot[left] + slot[right]: a node's two children added, left + right, into the left one.</summary>
    void Add(int left, int right);
}

/// <summary>
/// Adds node sums along the chunk tree as a binary counter: the one way every chunk-tree sum is taken
/// (the engine's loss, bias and block sums, the portable weight-gradient micro-tile, the coordinator's
/// <see cref="ChunkTree.Reduce"/>). The AVX2 weight-gradient kernel alone keeps its nodes in registers
/// and takes the same sums by hand (<c>Kernels.TreePairs16</c>, tested bit for bit against this).
/// </summary>
/// <remarks>
/// Nodes come in tree order (increasing start), each written into slot <see cref="Depth"/> before it is
/// pushed: chunks (level 0) or aligned nodes of 2^level chunks. The stack holds the left children that
/// still wait for their right siblings, at most one per level, levels falling from slot 0; that is the
/// binary representation of the number of chunks covered so far, which is all the counter stores.
/// Pushing a node of level L adds 2^L to it, and every carry is a node whose two halves are complete:
/// slot[d − 1] ← slot[d − 1] + slot[d], one level up. <see cref="Fold"/> then adds what is left, the left
/// spines of the tree, right to left (slot[d] ← slot[d] + slot[d + 1] for d = depth − 2 … 0): a right half
/// that lies past the last chunk is simply missing, as in the tree's definition. The root ends in slot 0.
/// </remarks>
internal struct ChunkTreeCounter
{
    private uint _covered; // chunks covered so far: bit L set ⇔ a node of level L waits on the stack

    /// <summary>Entries on the stack: the slot the next node is written to.</summary>
    public readonly int Depth => BitOperations.PopCount(_covered);

    /// <summary>
    /// The node in slot <see cref="Depth"/>, of 2^<paramref name="level"/> chunks (it starts where the
    /// nodes pushed so far end), joins the tree: each completed parent is added into its left child's slot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push<TSlots>(ref TSlots slots, int level = 0)
        where TSlots : struct, IChunkTreeSlots
    {
        Debug.Assert((_covered & ((1u << level) - 1)) == 0, "a node of 2^level chunks starts at a multiple of 2^level");
        var right = Depth;
        for (var carry = _covered >> level; (carry & 1) != 0; carry >>= 1, right--) slots.Add(right - 1, right);
        _covered += 1u << level;
    }

    /// <summary>Adds the entries left on the stack right to left: the root ends in slot 0 (the one entry left).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Fold<TSlots>(ref TSlots slots)
        where TSlots : struct, IChunkTreeSlots
    {
        for (var left = Depth - 2; left >= 0; left--) slots.Add(left, left + 1);
        _covered = BitOperations.RoundUpToPowerOf2(_covered);
    }
}
