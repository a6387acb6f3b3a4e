using System.Globalization;
using System.Text.RegularExpressions;

namespace Backprop.Coordinator.Tests.Cli;

public sealed partial class TrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("train-tests").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"test accuracy (\d\.\d+)")]
    private static partial Regex TestAccuracy();

    private static double AccuracyOf(string output) =>
        double.Parse(TestAccuracy().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public void Train_Xor_SeedsLogisticQuadraticSgd_LearnsIt()
    {
        var (code, output, error) = CommandLineRunner.Run("train", "--data", "xor", "--hidden", "3", "--activation", "logistic", "--cost", "quadratic",
            "--optimizer", "sgd", "--lr", "2", "--batch-size", "4", "--epochs", "2000", "--scale", "none", "--seed", "1", "--quiet");
        Assert.True(code == 0, error);
        Assert.Equal(1.0, AccuracyOf(output));
        var loss = double.Parse(Regex.Match(output, @"test loss (\d\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(loss < 0.01, output);
    }

    [Fact]
    public void Train_Defaults_ReachAtLeast95PercentOnDigits()
    {
        var (code, output, error) = CommandLineRunner.Run();
        Assert.True(code == 0, error);
        Assert.Contains("digits: 1438 training, 359 test samples", output);
        Assert.True(AccuracyOf(output) >= 0.95, output);
    }

    [Fact]
    public void Train_FashionMnist_ReachesAtLeast85PercentInTwoEpochs()
    {
        var (code, output, error) = CommandLineRunner.Run("train", "--data", TestData.FashionMnist, "--hidden", "128", "--epochs", "2", "--batch-size", "64", "--quiet");
        Assert.True(code == 0, error);
        Assert.True(AccuracyOf(output) >= 0.85, output);
    }

    [Fact]
    public void Train_TargetAccuracy_StopsAtTheFirstEpochThatReachesIt()
    {
        var (code, output, error) = CommandLineRunner.Run("train", "--target-accuracy", "0.9", "--epochs", "30");
        Assert.True(code == 0, error);
        var reached = Regex.Match(output, @"target accuracy 0\.9000 reached at epoch (\d+)/30 after (\d+\.\d\d) s");
        Assert.True(reached.Success, output);
        var epoch = int.Parse(reached.Groups[1].Value, CultureInfo.InvariantCulture);
        var accuracies = Regex.Matches(output, @"(?m)^epoch +\d+/30 .* test loss \S+ acc (\d\.\d+)")
            .Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(epoch, accuracies.Count);                     // no epoch after the one that reached it
        Assert.True(epoch < 30, output);
        Assert.All(accuracies.SkipLast(1), a => Assert.True(a < 0.9, output));
        Assert.True(accuracies[^1] >= 0.9, output);
        Assert.Equal(accuracies[^1], AccuracyOf(output));           // the final model is the evaluated one
    }

    [Fact]
    public void Train_TargetAccuracyNotReached_TrainsEveryEpochAndSaysSo()
    {
        var (code, output, error) = CommandLineRunner.Run("train", "--target-accuracy", "1", "--epochs", "2", "--hidden", "4");
        Assert.True(code == 0, error);
        Assert.Matches(@"target accuracy 1\.0000 not reached in 2 epochs", output);
        Assert.Equal(2, Regex.Count(output, "(?m)^epoch "));
    }

    [Fact]
    public void Train_BatchLargerThanTheData_SaysEachEpochIsOneStepOverAllSamples()
    {
        var (code, output, _) = CommandLineRunner.Run("train", "--batch-size", "100000", "--epochs", "1");
        Assert.Equal(0, code);
        Assert.Contains("batch 100000 (more than the 1438 training samples: one step per epoch, over all of them)", output);
    }

    /// <summary>Trains on the digits for <paramref name="epochs"/> epochs and saves the model; returns its path and what train printed.</summary>
    private (string Path, string Output) TrainAndSave(string name, int epochs)
    {
        var path = Path.Combine(_dir, name);
        var (code, output, error) = CommandLineRunner.Run("train", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--save", path, "--quiet");
        Assert.True(code == 0, error);
        return (path, output);
    }

    [Fact]
    public void TrainSaveThenEval_ReportsTheSameTestAccuracy()
    {
        var (path, trainOutput) = TrainAndSave("digits.bpm", epochs: 3);
        var trained = AccuracyOf(trainOutput);

        var (code, output, error) = CommandLineRunner.Run("eval", "--model", path);
        Assert.True(code == 0, error);
        var evaluated = double.Parse(Regex.Match(output, @"accuracy (\d\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Equal(trained, evaluated);
        Assert.StartsWith("test: 359 samples", output);
    }

    [Fact]
    public void TrainSave_RecordsTheRawDataSetsNameAndHash()
    {
        var (path, _) = TrainAndSave("meta.bpm", epochs: 1);
        var metadata = Backprop.Models.ModelFile.Load(path).Metadata;
        var raw = Backprop.Data.DataSources.Load(new Backprop.Data.DataOptions("digits")).Train;
        Assert.Equal(raw.Name, metadata["data"]);
        Assert.Equal(raw.ContentHash, metadata["data.sha256"]);
    }

    [Fact]
    public void Train_SameSeed_GivesTheSameModelBytes()
    {
        string a = Path.Combine(_dir, "a.bpm"), b = Path.Combine(_dir, "b.bpm");
        Assert.Equal(0, CommandLineRunner.Run("train", "--epochs", "2", "--seed", "7", "--save", a, "--quiet").ExitCode);
        Assert.Equal(0, CommandLineRunner.Run("train", "--epochs", "2", "--seed", "7", "--save", b, "--quiet").ExitCode);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Fact]
    public void RootHelp_ListsTrainAndEvalOnly()
    {
        var (code, output, _) = CommandLineRunner.Run("--help");
        Assert.Equal(0, code);
        var commands = output[output.IndexOf("Commands:", StringComparison.Ordinal)..].Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[1..];
        Assert.Equal(["train", "eval"], commands.Select(c => c.Split(' ')[0]));
    }

    [Fact]
    public void Help_ListsTheOptions()
    {
        var (code, output, _) = CommandLineRunner.Run("train", "--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--data", "--hidden", "--layers", "--activation", "--cost", "--optimizer", "--learning-rate", "--batch-size", "--epochs", "--seed", "--save" })
            Assert.Contains(option, output);
    }
}
