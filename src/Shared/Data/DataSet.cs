using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Backprop.Data;

/// <summary>Where sample i came from, for error messages: "digits.csv line 17" or "train-labels-idx1-ubyte.gz record 5".</summary>
/// <param name="Path">The file (or the name of a built-in set).</param>
/// <param name="Unit">"line" or "record".</param>
/// <param name="First">The number of sample 0 in that unit (CSV: its line number).</param>
public sealed record SampleOrigin(string Path, string Unit, int First)
{
    /// <summary>A description of sample <paramref name="index"/>.</summary>
    public string Describe(int index) => $"{Path} {Unit} {First + index}";
}

/// <summary>
/// A labelled data set in memory: n samples of d float features (row-major, n × d) and an integer
/// class label per sample.
/// </summary>
public sealed class DataSet
{
    private readonly float[] _features;
    private readonly int[] _labels;
    private readonly SampleOrigin[] _origins;
    private string? _contentHash;

    /// <summary>Creates a data set; <paramref name="features"/> has <c>labels.Length × featureCount</c> values.</summary>
    public DataSet(string name, float[] features, int featureCount, int[] labels, int classCount, SampleOrigin origin)
        : this(name, features, featureCount, labels, classCount, [origin])
    {
    }

    private DataSet(string name, float[] features, int featureCount, int[] labels, int classCount, SampleOrigin[] origins)
    {
        if (featureCount < 1) throw new ArgumentOutOfRangeException(nameof(featureCount), featureCount, "need at least one feature");
        if (features.Length != (long)labels.Length * featureCount)
            throw new ArgumentException($"{features.Length} features for {labels.Length} samples of {featureCount}", nameof(features));
        Name = name;
        _features = features;
        FeatureCount = featureCount;
        _labels = labels;
        ClassCount = classCount;
        _origins = origins;
    }

    /// <summary>A short name for messages ("digits", a file name).</summary>
    public string Name { get; }
    /// <summary>n.</summary>
    public int Count => _labels.Length;
    /// <summary>d.</summary>
    public int FeatureCount { get; }
    /// <summary>The number of classes labels are drawn from (labels are 0 … ClassCount − 1).</summary>
    public int ClassCount { get; }
    /// <summary>All features, n × d row-major.</summary>
    public ReadOnlySpan<float> Features => _features;
    /// <summary>All labels.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>The features of sample i.</summary>
    public ReadOnlySpan<float> Row(int i) => _features.AsSpan(i * FeatureCount, FeatureCount);

    /// <summary>Where sample i came from, for error messages.</summary>
    public string Describe(int i) => _origins.Length == 1 ? _origins[0].Describe(i) : _origins[i].Describe(0);

    /// <summary>
    /// SHA-256 (hex) over the sample count, feature count, the features as little-endian float32 and
    /// the labels as little-endian int32: two nodes holding the same data agree on it.
    /// </summary>
    public string ContentHash => _contentHash ??= ComputeHash();

    private string ComputeHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> header = stackalloc byte[8];
        BitConverter.TryWriteBytes(header[..4], Count);
        BitConverter.TryWriteBytes(header[4..], FeatureCount);
        sha.AppendData(header);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian machines are not supported");
        sha.AppendData(MemoryMarshal.AsBytes(_features.AsSpan()));
        sha.AppendData(MemoryMarshal.AsBytes(_labels.AsSpan()));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The samples at <paramref name="indices"/>, in that order.</summary>
    public DataSet Select(ReadOnlySpan<int> indices, string? name = null)
    {
        var features = new float[indices.Length * FeatureCount];
        var labels = new int[indices.Length];
        var origins = new SampleOrigin[indices.Length];
        for (var r = 0; r < indices.Length; r++)
        {
            Row(indices[r]).CopyTo(features.AsSpan(r * FeatureCount, FeatureCount));
            labels[r] = _labels[indices[r]];
            origins[r] = _origins.Length == 1 ? _origins[0] with { First = _origins[0].First + indices[r] } : _origins[indices[r]];
        }
        return new DataSet(name ?? Name, features, FeatureCount, labels, ClassCount, origins);
    }

    /// <summary>The same samples with other features (for example scaled ones).</summary>
    public DataSet WithFeatures(float[] features) => new(Name, features, FeatureCount, _labels, ClassCount, _origins);

    /// <summary>The same samples declared to have <paramref name="classCount"/> classes.</summary>
    public DataSet WithClassCount(int classCount)
    {
        for (var i = 0; i < Count; i++)
        {
            if (_labels[i] >= classCount)
                throw new InvalidInputException($"{Describe(i)}: label {_labels[i]} is out of range for {classCount} class{(classCount == 1 ? "" : "es")} (labels must be 0 … {classCount - 1})");
        }
        return new DataSet(Name, _features, FeatureCount, _labels, classCount, _origins);
    }
}

/// <summary>A training set and the set it is tested on.</summary>
public sealed record DataSplit(DataSet Train, DataSet Test);
