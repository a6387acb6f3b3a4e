using System.Collections.Concurrent;

namespace Backprop.Channel;

/// <summary>
/// Float arrays of exactly the length asked for, reused: a run moves tensors of one or two lengths
/// (a gradient, the weights), so the arrays that carried one step carry the next. A new array is
/// allocated uninitialized (no zeroing; every user overwrites it whole). Thread-safe.
/// </summary>
public sealed class FloatArrayPool
{
    private readonly ConcurrentDictionary<int, ConcurrentBag<float[]>> _free = new();
    private readonly int _keepPerLength;
    private long _allocated;

    /// <summary>A pool that keeps up to <paramref name="keepPerLength"/> free arrays of each length.</summary>
    public FloatArrayPool(int keepPerLength = 32) => _keepPerLength = keepPerLength;

    /// <summary>Arrays this pool has allocated so far (the rest of the rents were reuses).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>An array of exactly <paramref name="length"/> values, with unspecified contents.</summary>
    public float[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (_free.TryGetValue(length, out var bag) && bag.TryTake(out var array)) return array;
        Interlocked.Increment(ref _allocated);
        return GC.AllocateUninitializedArray<float>(length);
    }

    /// <summary>Gives <paramref name="array"/> back; the caller must not use it afterwards.</summary>
    public void Return(float[] array)
    {
        var bag = _free.GetOrAdd(array.Length, _ => []);
        if (bag.Count < _keepPerLength) bag.Add(array);
    }
}
