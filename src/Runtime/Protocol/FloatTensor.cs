namespace Backprop.Protocol;

/// <summary>
/// An immutable vector of floats for messages. A local <c>Tell</c> hands over a reference, so a
/// message must never hold an array its sender may still write: a tensor is made from a copy (or
/// from an array whose ownership passes to it) and only ever read.
/// </summary>
/// <remarks>
/// A tensor may also live in a pooled array (<see cref="Pooled"/>): whoever holds it calls
/// <see cref="Hold"/> and <see cref="Release"/> around its use, and the last release gives the array
/// back. A tensor made any other way ignores both.
/// </remarks>
public sealed class FloatTensor
{
    private readonly float[] _values;
    private readonly Action<float[]>? _giveBack;
    private int _holds = 1;

    private FloatTensor(float[] values, Action<float[]>? giveBack = null)
    {
        _values = values;
        _giveBack = giveBack;
    }

    /// <summary>
    /// A tensor over the pooled array <paramref name="values"/>, held once by the caller; the last
    /// <see cref="Release"/> hands the array to <paramref name="giveBack"/>.
    /// </summary>
    public static FloatTensor Pooled(float[] values, Action<float[]> giveBack) => new(values, giveBack);

    /// <summary>One more holder of a pooled tensor (for example a send in flight); returns this tensor.</summary>
    public FloatTensor Hold()
    {
        if (_giveBack is not null) Interlocked.Increment(ref _holds);
        return this;
    }

    /// <summary>A holder is done with a pooled tensor; the last one gives the array back. It must not be read afterwards.</summary>
    public void Release()
    {
        if (_giveBack is not null && Interlocked.Decrement(ref _holds) == 0) _giveBack(_values);
    }

    /// <summary>The array behind the tensor, for a transport that writes it out; never written.</summary>
    internal float[] Array => _values;

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
