using System.Numerics.Tensors;

namespace Backprop.Protocol;

/// <summary>
/// An immutable vector of floats for messages. A local <c>Tell</c> hands over a reference, so a
/// message must never hold an array its sender may still write: a tensor is made from a copy (or
/// from an array whose ownership passes to it) and only ever read.
/// </summary>
public sealed class FloatTensor
{
    private readonly float[] _values;

    private FloatTensor(float[] values, bool halfPrecision)
    {
        _values = values;
        IsHalfPrecision = halfPrecision;
    }

    /// <summary>A tensor holding a copy of <paramref name="values"/>.</summary>
    public static FloatTensor CopyOf(ReadOnlySpan<float> values) => new(values.ToArray(), halfPrecision: false);

    /// <summary>
    /// A copy of <paramref name="values"/> rounded to half precision (IEEE binary16), which the wire
    /// then carries in 2 bytes a value. The rounding happens here, not in the serializer, so a
    /// message gives the same numbers whether it crosses the network or not. Values too large for
    /// half precision (beyond ±65504) keep full precision for the whole tensor instead.
    /// </summary>
    public static FloatTensor RoundedToHalf(ReadOnlySpan<float> values)
    {
        var rounded = new float[values.Length];
        RoundToHalf(values, rounded);
        // A finite value beyond the half range became infinite: keep the whole tensor in full precision.
        var largest = TensorPrimitives.MaxMagnitude(rounded.AsSpan());
        if (float.IsInfinity(largest) || float.IsNaN(largest))
        {
            for (var i = 0; i < values.Length; i++)
            {
                if (float.IsInfinity(rounded[i]) && float.IsFinite(values[i])) return CopyOf(values);
            }
        }
        return new FloatTensor(rounded, halfPrecision: true);
    }

    /// <summary>
    /// <paramref name="rounded"/>[i] ← (float)(Half)<paramref name="values"/>[i], vectorized
    /// (<see cref="TensorPrimitives"/>, through a small stack buffer of halves): the same bits as the
    /// casts, which the tests hold it to.
    /// </summary>
    internal static void RoundToHalf(ReadOnlySpan<float> values, Span<float> rounded)
    {
        Span<Half> halves = stackalloc Half[HalfBlock];
        for (var start = 0; start < values.Length; start += HalfBlock)
        {
            var count = Math.Min(HalfBlock, values.Length - start);
            TensorPrimitives.ConvertToHalf(values.Slice(start, count), halves[..count]);
            TensorPrimitives.ConvertToSingle(halves[..count], rounded.Slice(start, count));
        }
    }

    private const int HalfBlock = 2048;

    /// <summary>
    /// A tensor that takes <paramref name="values"/> over: the caller must not keep or write the
    /// array afterwards (for deserializers, which allocate a fresh array per message).
    /// </summary>
    public static FloatTensor TakeOwnership(float[] values, bool halfPrecision = false) => new(values, halfPrecision);

    /// <summary>The values, read-only.</summary>
    public ReadOnlySpan<float> Span => _values;

    /// <summary>Whether every value is exactly representable in half precision (and travels as such).</summary>
    public bool IsHalfPrecision { get; }

    /// <summary>The number of values.</summary>
    public int Length => _values.Length;

    /// <summary>Whether every value is finite (no NaN, no infinity).</summary>
    public bool AllFinite()
    {
        foreach (var v in _values)
        {
            if (!float.IsFinite(v)) return false;
        }
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => $"FloatTensor[{_values.Length}{(IsHalfPrecision ? ", half" : "")}]";
}
