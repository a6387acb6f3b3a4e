namespace Backprop.Protocol;

/// <summary>
/// An immutable vector of floats for messages. A local <c>Tell</c> hands over a reference, so a
/// message must never hold an array its sender may still write: a tensor is made from a copy (or
/// from an array whose ownership passes to it) and only ever read.
/// </summary>
public sealed class FloatTensor
{
    private readonly float[] _values;

    private FloatTensor(float[] values) => _values = values;

    /// <summary>A tensor holding a copy of <paramref name="values"/>.</summary>
    public static FloatTensor CopyOf(ReadOnlySpan<float> values) => new(values.ToArray());

    /// <summary>
    /// A tensor that takes <paramref name="values"/> over: the caller must not keep or write the
    /// array afterwards (for deserializers, which allocate a fresh array per message).
    /// </summary>
    public static FloatTensor TakeOwnership(float[] values) => new(values);

    /// <summary>The values, read-only.</summary>
    public ReadOnlySpan<float> Span => _values;

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
    public override string ToString() => $"FloatTensor[{_values.Length}]";
}
