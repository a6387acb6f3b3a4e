namespace Backprop.Coordinator.Tests.Cli;

/// <summary>Every user error is one line on stderr naming what was wrong, exit code 2, no stack trace.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bad-input").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    private string File(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string FailsWithOneLine(params string[] args)
    {
        var (code, output, error) = CommandLineRunner.Run(args);
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", error);        // no stack trace
        Assert.DoesNotContain("Exception", error);
        Assert.DoesNotMatch("(?m)^epoch ", output);     // nothing was trained
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("error: ", lines[0]);
        return lines[0];
    }

    [Fact]
    public void Train_SaveIntoAMissingDirectory_IsRefusedBeforeTraining()
    {
        var path = Path.Combine(_dir, "missing", "m.bpm");
        var line = FailsWithOneLine("train", "--epochs", "1", "--save", path);
        Assert.Contains(path, line);
    }

    [Fact]
    public void Bench_IsNotACommandOfTheProduct()
    {
        var (code, output, error) = CommandLineRunner.Run("bench", "--python", "none");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains("error: Unrecognized command or argument 'bench'.", error);
    }

    [Theory]
    [InlineData("--epochs", "many")]
    [InlineData("--epochs", "0")]
    [InlineData("--activation", "swish")]
    [InlineData("--optimizer", "lbfgs")]
    [InlineData("--hidden", "64,x")]
    [InlineData("--test-fraction", "1.5")]
    [InlineData("--workers", "0")]
    [InlineData("--step-timeout", "-1")]
    [InlineData("--target-accuracy", "0")]
    public void NonsenseFlagValue_NamesTheOptionAndTheValue(string option, string value) =>
        Assert.Contains($"{option} '{value}'", FailsWithOneLine("train", option, value));

    [Theory]
    [InlineData("--batch-size", "-3", "--batch-size")]
    [InlineData("--lr", "-0.1", "learning rate")]
    [InlineData("--target-accuracy", "1.5", "--target-accuracy '1.5': expected a fraction in (0, 1]")]
    public void NonsenseFlagValue_NamesTheOption(string option, string value, string expected) =>
        Assert.Contains(expected, FailsWithOneLine("train", option, value));

    [Fact]
    public void ModelTooLargeForTheFrame_FailsAtStart() =>
        Assert.Equal("error: the model's 4,810 parameters need messages of 84,776 bytes, more than the maximum frame of 40,000 bytes (raise --max-frame-size)",
            FailsWithOneLine("train", "--cluster", "--port", "0", "--max-frame-size", "40000"));

    [Fact]
    public void UnknownOption_IsNamed() =>
        Assert.Contains("--epoch", FailsWithOneLine("train", "--epoch", "3"));

    [Fact]
    public void LayerSizesThatDoNotMatchTheData_SayWhich()
    {
        Assert.Equal("error: --layers 10,5,10: the input layer has 10 units but digits has 64 features per sample", FailsWithOneLine("train", "--layers", "10,5,10"));
        Assert.Equal("error: --layers 64,5,7: the output layer has 7 units but digits has 10 classes", FailsWithOneLine("train", "--layers", "64,5,7"));
    }

    [Fact]
    public void CrossEntropyWithTanhOutput_IsRefused() =>
        Assert.Contains("--cost cross-entropy needs a softmax or logistic output", FailsWithOneLine("train", "--output", "tanh"));

    [Theory]
    [InlineData("ragged.csv", "1,2,0\n3,4,1\n5,1\n", "line 3: expected 3 fields, found 2")]      // names the file and line
    [InlineData("text.csv", "1,2,0\n3,four,1\n", "line 2, column 2: 'four' is not a number")]  // names the file, line and column
    [InlineData("empty.csv", "", ": no samples (the file is empty or holds only a header)")]
    public void BadCsv_IsOneLineNamingTheFileAndWhere(string name, string content, string what)
    {
        var path = File(name, content);
        Assert.Equal($"error: {path}{(what.StartsWith(':') ? "" : " ")}{what}", FailsWithOneLine("train", "--data", path));
    }

    [Fact]
    public void TestLabelOutOfRange_NamesTheSample()
    {
        var train = File("train.csv", "1,2,0\n3,4,1\n5,6,1\n");
        var test = File("test.csv", "1,2,0\n3,4,9\n");
        Assert.Equal($"error: {test} line 2: label 9 is out of range for 2 classes (labels must be 0 … 1)",
            FailsWithOneLine("train", "--data", train, "--test-data", test));
        Assert.Equal($"error: {train} line 2: label 1 is out of range for 1 class (labels must be 0 … 0)",
            FailsWithOneLine("train", "--data", train, "--test-data", test, "--classes", "1"));
    }

    [Fact]
    public void WrongMagicIdx_IsNamed()
    {
        var images = File("train-images-idx3-ubyte", [0x1, 0x2, 0x3, 0x4, 0, 0, 0, 0]);
        File("train-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 0]);
        File("t10k-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 0]);
        File("t10k-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 0]);
        var line = FailsWithOneLine("train", "--data", _dir);
        Assert.Contains(images, line);
        Assert.Contains("not an IDX file", line);
    }

    [Fact]
    public void TruncatedIdx_IsNamed()
    {
        var images = File("x-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3]);
        File("x-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 2, 0, 1]);
        var line = FailsWithOneLine("train", "--data", images);
        Assert.Contains(images, line);
        Assert.Contains("truncated", line);
    }

    [Fact]
    public void MissingDataFile_IsNamed() =>
        Assert.Contains("nowhere.csv: no such file or directory", FailsWithOneLine("train", "--data", "nowhere.csv"));

    [Fact]
    public void CorruptModelFile_IsNamed()
    {
        var path = Path.Combine(_dir, "m.bpm");
        Assert.Equal(0, CommandLineRunner.Run("train", "--epochs", "1", "--save", path, "--quiet").ExitCode);
        var bytes = System.IO.File.ReadAllBytes(path);
        bytes[100] ^= 1;
        System.IO.File.WriteAllBytes(path, bytes);
        Assert.Equal($"error: {path}: the model file is corrupt or truncated (SHA-256 checksum mismatch)", FailsWithOneLine("eval", "--model", path));
    }

    [Fact]
    public void TruncatedModelFile_IsNamed()
    {
        var path = Path.Combine(_dir, "m.bpm");
        Assert.Equal(0, CommandLineRunner.Run("train", "--epochs", "1", "--save", path, "--quiet").ExitCode);
        var bytes = System.IO.File.ReadAllBytes(path);
        System.IO.File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Contains("corrupt or truncated", FailsWithOneLine("eval", "--model", path));
    }

    [Fact]
    public void ModelForOtherData_IsRefused()
    {
        var path = Path.Combine(_dir, "m.bpm");
        Assert.Equal(0, CommandLineRunner.Run("train", "--epochs", "1", "--save", path, "--quiet").ExitCode);
        Assert.Contains("the model takes 64 inputs but xor has 2 features", FailsWithOneLine("eval", "--model", path, "--data", "xor"));
    }
}
