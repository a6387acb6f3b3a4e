using System.Numerics;

namespace Backprop.Training;

/// <summary>
/// ∂C/∂w and ∂C/∂b summed (not averaged) over some samples, in the flat parameter layout, with the
/// sample count kept apart: averaging over any split of a batch is then exact. Also carries the
/// summed cost and the number of correct predictions of those samples (made with the weights the
/// gradient was computed at).
/// </summary>
public sealed class GradientSum
{
    /// <summary>A zero sum for a network of <paramref name="parameterCount"/> parameters.</summary>
    public GradientSum(int parameterCount) => Values = new float[parameterCount];

    /// <summary>Wraps existing values (for example just deserialized).</summary>
    public GradientSum(float[] values, int sampleCount, double lossSum, int correctCount)
    {
        Values = values;
        SampleCount = sampleCount;
        LossSum = lossSum;
        CorrectCount = correctCount;
    }

    /// <summary>Σ ∂C(x)/∂θ over the samples.</summary>
    public float[] Values { get; }
    /// <summary>The number of samples summed.</summary>
    public int SampleCount { get; set; }
    /// <summary>Σ C(x) over the samples.</summary>
    public double LossSum { get; set; }
    /// <summary>How many of the samples were predicted right.</summary>
    public int CorrectCount { get; set; }

    /// <summary>
    /// this ← this + right: the one reduction step everything uses, so a sum built on a worker and
    /// one built on the coordinator are the same bits when built in the same order.
    /// </summary>
    public void Add(GradientSum right)
    {
        if (right.Values.Length != Values.Length) throw new ArgumentException("gradient sizes differ", nameof(right));
        AddInPlace(Values, right.Values);
        SampleCount += right.SampleCount;
        LossSum += right.LossSum;
        CorrectCount += right.CorrectCount;
    }

    /// <summary>this ← source.</summary>
    public void CopyFrom(GradientSum source)
    {
        source.Values.CopyTo(Values, 0);
        SampleCount = source.SampleCount;
        LossSum = source.LossSum;
        CorrectCount = source.CorrectCount;
    }

    /// <summary>this ← 0.</summary>
    public void Clear()
    {
        Array.Clear(Values);
        SampleCount = 0;
        LossSum = 0;
        CorrectCount = 0;
    }

    /// <summary>An independent copy.</summary>
    public GradientSum Clone() => new((float[])Values.Clone(), SampleCount, LossSum, CorrectCount);

    /// <summary>left ← left + right, element by element (exact whatever the vector width).</summary>
    public static void AddInPlace(Span<float> left, ReadOnlySpan<float> right)
    {
        if (right.Length < left.Length) throw new ArgumentException($"{right.Length} values to add to {left.Length}", nameof(right));
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref var l = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(left);
            ref var r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(right);
            for (; i <= left.Length - Vector<float>.Count; i += Vector<float>.Count)
                (Vector.LoadUnsafe(ref l, (nuint)i) + Vector.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref l, (nuint)i);
        }
        for (; i < left.Length; i++) left[i] += right[i];
    }
}
