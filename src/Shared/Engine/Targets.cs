namespace Backprop.Engine;

/// <summary>How a class label becomes the target vector y, and an output a becomes a prediction.</summary>
/// <remarks>
/// With one output unit the task is binary: y = label (0 or 1) and the prediction is a ≥ ½. With
/// more, y is one-hot and the prediction is the index of the largest output.
/// </remarks>
public static class Targets
{
    /// <summary>y_j for a sample of class <paramref name="label"/> in a layer of <paramref name="outputs"/> units.</summary>
    public static float Target(int label, int outputs, int j) => outputs == 1 ? label : (j == label ? 1f : 0f);

    /// <summary>Writes y for <paramref name="label"/>.</summary>
    public static void Encode(int label, Span<double> y)
    {
        for (var j = 0; j < y.Length; j++) y[j] = Target(label, y.Length, j);
    }

    /// <summary>The predicted class of one output row.</summary>
    public static int Predict(ReadOnlySpan<float> a)
    {
        if (a.Length == 1) return a[0] >= 0.5f ? 1 : 0;
        var best = 0;
        for (var j = 1; j < a.Length; j++)
        {
            if (a[j] > a[best]) best = j;
        }
        return best;
    }
}
