using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Backprop.Training;

namespace Backprop.Engine;

/// <summary>Chunk-tree slots of doubles: the engine's loss sums.</summary>
internal readonly struct DoubleSlots(double[] sums) : IChunkTreeSlots
{
    /// <inheritdoc/>
    public void Add(int left, int right) => sums[left] += sums[right];
}

/// <summary>
/// Chunk-tree slots that are rows of <paramref name="count"/> floats, <paramref name="stride"/> floats apart
/// from <paramref name="first"/>, in pinned memory: the bias gradients of a block, and the gradient sums of
/// whole blocks.
/// </summary>
internal readonly unsafe struct FloatRowSlots(float* first, nint stride, int count) : IChunkTreeSlots
{
    /// <summary>The first float of slot <paramref name="slot"/>.</summary>
    public float* Pointer(int slot) => first + slot * stride;

    /// <summary>Slot <paramref name="slot"/>.</summary>
    public Span<float> this[int slot] => new(first + slot * stride, count);

    /// <inheritdoc/>
    public void Add(int left, int right) => GradientSum.AddInPlace(this[left], this[right]);
}

/// <summary>
/// Chunk-tree slots that are micro-tiles of <paramref name="tileFloats"/> floats (a multiple of 4) side by
/// side from <paramref name="stack"/>: the partial tiles of the portable weight-gradient kernel.
/// </summary>
internal readonly unsafe struct TileSlots(float* stack, int tileFloats) : IChunkTreeSlots
{
    /// <summary>The first float of slot <paramref name="slot"/>.</summary>
    public float* Pointer(int slot) => stack + slot * tileFloats;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(int left, int right)
    {
        float* l = Pointer(left), r = Pointer(right);
        for (var i = 0; i < tileFloats; i += Vector128<float>.Count) Vector128.Store(Vector128.Load(l + i) + Vector128.Load(r + i), l + i);
    }
}
