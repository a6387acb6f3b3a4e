namespace Backprop.Data;

/// <summary>How features are scaled before they reach the network.</summary>
public enum ScalingKind
{
    /// <summary>x' = x.</summary>
    None,
    /// <summary>x' = x / max over all features of the training set (pixels 0…255 become 0…1).</summary>
    Max,
    /// <summary>x' = (x − min_i) / (max_i − min_i) per feature i.</summary>
    MinMax,
    /// <summary>x' = (x − mean_i) / std_i per feature i.</summary>
    Standard,
}

/// <summary>
/// A per-feature affine map x' = (x − shift) · scale, fitted on the training set and stored with
/// the model so evaluation scales data exactly as training did.
/// </summary>
public sealed class FeatureScaling
{
    /// <summary>Creates a scaling from its parts.</summary>
    public FeatureScaling(ScalingKind kind, float[] shift, float[] scale)
    {
        if (shift.Length != scale.Length) throw new ArgumentException("shift and scale differ in length", nameof(scale));
        Kind = kind;
        Shift = shift;
        Scale = scale;
    }

    /// <summary>The kind it was fitted as.</summary>
    public ScalingKind Kind { get; }
    /// <summary>Per-feature shift.</summary>
    public float[] Shift { get; }
    /// <summary>Per-feature factor.</summary>
    public float[] Scale { get; }
    /// <summary>d.</summary>
    public int FeatureCount => Shift.Length;

    /// <summary>x' = x for <paramref name="featureCount"/> features.</summary>
    public static FeatureScaling Identity(int featureCount)
    {
        var scale = new float[featureCount];
        Array.Fill(scale, 1f);
        return new FeatureScaling(ScalingKind.None, new float[featureCount], scale);
    }

    /// <summary>Fits a scaling of <paramref name="kind"/> on <paramref name="train"/>; constant features keep a factor of 1.</summary>
    public static FeatureScaling Fit(ScalingKind kind, DataSet train)
    {
        int d = train.FeatureCount, n = train.Count;
        var shift = new float[d];
        var scale = new float[d];
        var x = train.Features;
        switch (kind)
        {
            case ScalingKind.None:
                return Identity(d);
            case ScalingKind.Max:
                var max = 0f;
                foreach (var v in x) max = Math.Max(max, Math.Abs(v));
                Array.Fill(scale, max > 0 ? 1f / max : 1f);
                break;
            case ScalingKind.MinMax:
                for (var i = 0; i < d; i++)
                {
                    float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                    for (var s = 0; s < n; s++) { var v = x[s * d + i]; lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
                    shift[i] = lo;
                    scale[i] = hi > lo ? 1f / (hi - lo) : 1f;
                }
                break;
            case ScalingKind.Standard:
                for (var i = 0; i < d; i++)
                {
                    double sum = 0, sumSquares = 0;
                    for (var s = 0; s < n; s++) { double v = x[s * d + i]; sum += v; sumSquares += v * v; }
                    var mean = sum / n;
                    var std = Math.Sqrt(Math.Max(0, sumSquares / n - mean * mean));
                    shift[i] = (float)mean;
                    scale[i] = std > 1e-12 ? (float)(1 / std) : 1f;
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
        return new FeatureScaling(kind, shift, scale);
    }

    /// <summary>A copy of <paramref name="data"/> with scaled features.</summary>
    public DataSet Apply(DataSet data)
    {
        if (data.FeatureCount != FeatureCount)
            throw new InvalidInputException($"{data.Name} has {data.FeatureCount} features, the scaling was fitted on {FeatureCount}");
        var x = data.Features;
        var scaled = new float[x.Length];
        int d = FeatureCount;
        for (var s = 0; s < data.Count; s++)
        {
            for (var i = 0; i < d; i++) scaled[s * d + i] = (x[s * d + i] - Shift[i]) * Scale[i];
        }
        return data.WithFeatures(scaled);
    }

    /// <summary>The name used on the command line and in files.</summary>
    public static string Name(ScalingKind kind) => kind switch
    {
        ScalingKind.None => "none",
        ScalingKind.Max => "max",
        ScalingKind.MinMax => "minmax",
        ScalingKind.Standard => "standard",
        _ => kind.ToString(),
    };

    /// <summary>Parses "none", "max", "minmax", "standard".</summary>
    public static bool TryParse(string text, out ScalingKind kind)
    {
        foreach (var k in Enum.GetValues<ScalingKind>())
        {
            if (string.Equals(Name(k), text.Trim(), StringComparison.OrdinalIgnoreCase)) { kind = k; return true; }
        }
        kind = default;
        return false;
    }
}
