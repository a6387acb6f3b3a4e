namespace Backprop.Data;

/// <summary>
/// Which data to train and test on. <see cref="Data"/> is a built-in name (digits, fashion-mnist,
/// xor, spirals), a CSV file (.csv or .csv.gz), an IDX images file (its labels file is found by
/// name) or a directory holding train-/t10k- IDX files.
/// </summary>
/// <param name="Data">The training data.</param>
/// <param name="TestData">A separate test file or directory; otherwise the built-in test part or a split.</param>
/// <param name="TestFraction">The part held out for testing when the data has no test part.</param>
/// <param name="Csv">How CSV files are read.</param>
/// <param name="SplitSeed">Seed of the train/test split.</param>
/// <param name="Classes">The number of classes; by default the largest training label + 1. A label outside is an error.</param>
public sealed record DataOptions(
    string Data = "digits",
    string? TestData = null,
    double TestFraction = 0.2,
    CsvOptions? Csv = null,
    int SplitSeed = 0,
    int? Classes = null);

/// <summary>Turns <see cref="DataOptions"/> into a loaded train/test split.</summary>
public static class DataSources
{
    /// <summary>The environment variable naming a directory of data sets (holding fashion-mnist/ and others).</summary>
    public const string DataSetsVariable = "BACKPROP_DATASETS";

    /// <summary>Where Debian's dataset-fashion-mnist package installs the files.</summary>
    public const string DebianFashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>Loads the training and test data.</summary>
    public static DataSplit Load(DataOptions options)
    {
        var split = LoadTrain(options);
        if (options.TestData is not null)
        {
            var test = LoadFile(options.TestData, options, preferTest: true);
            split = new DataSplit(split.Train, test);
        }
        if (split.Train.FeatureCount != split.Test.FeatureCount)
            throw new InvalidInputException($"{split.Test.Name} has {split.Test.FeatureCount} features per sample but {split.Train.Name} has {split.Train.FeatureCount}");
        var classes = options.Classes ?? split.Train.ClassCount;
        return new DataSplit(split.Train.WithClassCount(classes), split.Test.WithClassCount(classes));
    }

    private static DataSplit LoadTrain(DataOptions options)
    {
        switch (options.Data.Trim().ToLowerInvariant())
        {
            case "digits":
                return Shuffling.Split(BuiltInData.Digits(), options.TestFraction, options.SplitSeed);
            case "xor":
                var xor = BuiltInData.Xor();
                return new DataSplit(xor, xor);
            case "spirals":
                return Shuffling.Split(BuiltInData.Spirals(), options.TestFraction, options.SplitSeed);
            case "fashion-mnist":
                return LoadIdxDirectory(FindFashionMnist(), "fashion-mnist");
        }
        if (Directory.Exists(options.Data)) return LoadIdxDirectory(options.Data, Path.GetFileName(Path.TrimEndingDirectorySeparator(options.Data)));
        var data = LoadFile(options.Data, options, preferTest: false);
        return options.TestData is null ? Shuffling.Split(data, options.TestFraction, options.SplitSeed) : new DataSplit(data, data);
    }

    /// <summary>The directory holding Fashion-MNIST: $BACKPROP_DATASETS/fashion-mnist, then Debian's location.</summary>
    public static string FindFashionMnist()
    {
        var candidates = new List<string>();
        var root = Environment.GetEnvironmentVariable(DataSetsVariable);
        if (!string.IsNullOrEmpty(root)) candidates.Add(Path.Combine(root, "fashion-mnist"));
        candidates.Add(DebianFashionMnist);
        foreach (var dir in candidates)
        {
            if (File.Exists(Path.Combine(dir, "train-images-idx3-ubyte.gz")) || File.Exists(Path.Combine(dir, "train-images-idx3-ubyte"))) return dir;
        }
        throw new InvalidInputException(
            $"fashion-mnist not found in {string.Join(" or ", candidates)}: install Debian's dataset-fashion-mnist, set {DataSetsVariable}, or pass --data DIR");
    }

    private static DataSplit LoadIdxDirectory(string dir, string name)
    {
        var train = IdxReader.ReadPair(FindIdx(dir, "train-images-idx3-ubyte"), FindIdx(dir, "train-labels-idx1-ubyte"), name);
        var test = IdxReader.ReadPair(FindIdx(dir, "t10k-images-idx3-ubyte"), FindIdx(dir, "t10k-labels-idx1-ubyte"), name + " (test)");
        return new DataSplit(train, test);
    }

    private static string FindIdx(string dir, string stem)
    {
        foreach (var candidate in new[] { stem + ".gz", stem })
        {
            var path = Path.Combine(dir, candidate);
            if (File.Exists(path)) return path;
        }
        throw new InvalidInputException($"{dir}: no {stem}[.gz] in this directory (an IDX data directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)");
    }

    private static DataSet LoadFile(string path, DataOptions options, bool preferTest)
    {
        if (Directory.Exists(path))
        {
            var split = LoadIdxDirectory(path, Path.GetFileName(Path.TrimEndingDirectorySeparator(path)));
            return preferTest ? split.Test : split.Train;
        }
        var name = Path.GetFileName(path);
        if (name.Contains("-images-idx", StringComparison.Ordinal) || name.Contains("-images.idx", StringComparison.Ordinal))
        {
            var labels = Path.Combine(Path.GetDirectoryName(path) ?? ".", name.Replace("-images-idx3", "-labels-idx1", StringComparison.Ordinal).Replace("-images.idx3", "-labels.idx1", StringComparison.Ordinal));
            if (!File.Exists(labels)) throw new InvalidInputException($"{path}: its labels file {labels} does not exist");
            return IdxReader.ReadPair(path, labels, name);
        }
        if (!File.Exists(path))
            throw new InvalidInputException($"--data {path}: no such file or directory, and not a built-in data set (digits, fashion-mnist, xor, spirals)");
        return CsvReader.Read(path, options.Csv);
    }
}
