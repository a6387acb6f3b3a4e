namespace Backprop.Data;

/// <summary>The data sets that need no file: the embedded digits and the synthetic sets used in tests.</summary>
public static class BuiltInData
{
    /// <summary>
    /// The 1,797 8×8 handwritten digits (UCI Optical Recognition of Handwritten Digits, test part,
    /// as redistributed by scikit-learn; CC BY 4.0, E. Alpaydin and C. Kaynak), embedded in this
    /// assembly. 64 features 0…16, labels 0…9.
    /// </summary>
    public static DataSet Digits()
    {
        using var stream = typeof(BuiltInData).Assembly.GetManifestResourceStream("Backprop.Data.digits.csv.gz")
            ?? throw new InvalidOperationException("the embedded digits resource is missing from the build");
        using var gzip = new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        return CsvReader.Read(reader, "digits (embedded)", "digits", new CsvOptions(LabelColumn: -1, Header: false));
    }

    /// <summary>The four XOR samples: features (0,0) (0,1) (1,0) (1,1), labels 0 1 1 0.</summary>
    public static DataSet Xor() =>
        new("xor", [0, 0, 0, 1, 1, 0, 1, 1], 2, [0, 1, 1, 0], 2, new SampleOrigin("xor", "sample", 0));

    /// <summary>
    /// Interleaved spirals in the plane: <paramref name="classes"/> arms of <paramref name="perClass"/>
    /// points each, with a little seeded noise. Not linearly separable; a small MLP learns it.
    /// </summary>
    public static DataSet Spirals(int perClass = 100, int classes = 3, int seed = 1)
    {
        var random = new MathNet.Numerics.Random.Xoshiro256StarStar(seed, threadSafe: false);
        var n = perClass * classes;
        var features = new float[n * 2];
        var labels = new int[n];
        for (var c = 0; c < classes; c++)
        {
            for (var k = 0; k < perClass; k++)
            {
                var i = c * perClass + k;
                var r = (double)k / perClass;
                var θ = c * 2 * Math.PI / classes + 4 * r + 0.2 * (random.NextDouble() - 0.5);
                features[2 * i] = (float)(r * Math.Cos(θ));
                features[2 * i + 1] = (float)(r * Math.Sin(θ));
                labels[i] = c;
            }
        }
        return new DataSet("spirals", features, 2, labels, classes, new SampleOrigin("spirals", "sample", 0));
    }
}
