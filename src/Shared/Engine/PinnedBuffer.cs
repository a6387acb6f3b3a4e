namespace Backprop.Engine;

/// <summary>
/// A float buffer on the pinned object heap with a 64-byte aligned start, that only grows: the
/// engine's working memory, allocated once per network shape and shard size and reused.
/// </summary>
internal sealed unsafe class PinnedBuffer
{
    private const int AlignmentFloats = 16; // 64 bytes
    private float[] _array = [];

    /// <summary>The aligned start (null until the first <see cref="Ensure"/>).</summary>
    public float* Pointer { get; private set; }

    /// <summary>Usable floats from <see cref="Pointer"/>.</summary>
    public int Length { get; private set; }

    /// <summary>Makes room for at least <paramref name="length"/> floats; the contents are lost when it grows.</summary>
    public void Ensure(int length)
    {
        if (length <= Length) return;
        _array = GC.AllocateArray<float>(length + AlignmentFloats, pinned: true);
        fixed (float* start = _array)
        {
            // Pinned: the address stays valid after the fixed block.
            var misalignment = (int)((nuint)start % (AlignmentFloats * sizeof(float))) / sizeof(float);
            Pointer = start + (misalignment == 0 ? 0 : AlignmentFloats - misalignment);
        }
        Length = length;
    }

    /// <summary>The buffer as a span.</summary>
    public Span<float> AsSpan() => new(Pointer, Length);
}
