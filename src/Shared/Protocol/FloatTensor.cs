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
        for (var i = 0; i < values.Length; i++)
        {
            rounded[i] = (float)(Half)values[i];
            if (float.IsInfinity(rounded[i]) && float.IsFinite(values[i])) return CopyOf(values);
        }
        return new FloatTensor(rounded, halfPrecision: true);
    }

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
