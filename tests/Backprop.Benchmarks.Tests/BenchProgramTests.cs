using Backprop.CommandLine;

namespace Backprop.Benchmarks.Tests;

/// <summary>The benchmark program's command line: its subcommands, and bad input as one line and exit code 2.</summary>
public class BenchProgramTests
{
    internal static (int Code, string Output, string Error) Run(params string[] args) => Testing.ProgramOutput.Capture(BenchProgram.Run, args);

    [Fact]
    public void Help_NamesTheFourCommands()
    {
        var (code, output, _) = Run("--help");

        Assert.Equal(ExitCode.Ok, code);
        Assert.Contains("step", output);
        Assert.Contains("timeline", output);
        Assert.Contains("kernels", output);
        Assert.Contains("transport", output);
    }

    [Fact]
    public void StepHelp_ListsTheOptionsAndTheReferenceNets()
    {
        var (code, output, _) = Run("step", "--help");

        Assert.Equal(ExitCode.Ok, code);
        foreach (var option in new[] { "--data", "--nets", "--threads", "--batch-size", "--chunk-size", "--repetitions", "--seconds", "--phases", "--python" })
            Assert.Contains(option, output);
        Assert.Contains("784-30-10, 784-256-128-10, 784-1024-1024-10", output);
    }

    [Theory]
    [InlineData(new[] { "step", "--nets", "nope" }, "error: --nets nope: expected one of 784-30-10, 784-256-128-10, 784-1024-1024-10 or all")]
    [InlineData(new[] { "step", "--repetitions", "0" }, "error: --batch-size, --chunk-size, --repetitions and --seconds must be positive")]
    [InlineData(new[] { "step", "--nets", "784-30-10", "--data", "/no/such/directory" }, "error: --data /no/such/directory: not a directory of Fashion-MNIST IDX files")]
    public void Step_BadInput_OneLineAndExitCode2(string[] args, string expected)
    {
        var (code, output, error) = Run(args);

        Assert.Equal(ExitCode.BadInput, code);
        Assert.Equal(expected, error.TrimEnd());
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("step", "--threads", "0")]
    [InlineData("timeline", "0")]
    [InlineData("timeline", "soon")]
    [InlineData("timeline", "1", "2")]
    [InlineData("nope")]
    public void ParseErrors_NameTheValueAndPointToHelp(params string[] args)
    {
        var (code, _, error) = Run(args);

        Assert.Equal(ExitCode.BadInput, code);
        var lines = error.TrimEnd().Split('\n');
        Assert.StartsWith("error: ", lines[0]);
        Assert.StartsWith($"Run '{BenchProgram.Invocation} ", lines[^1]);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1,x")]
    public void Step_BadThreadList_IsOneLineAboutThreadCounts(string threads)
    {
        var (code, _, error) = Run("step", "--threads", threads, "--python", "none");

        Assert.Equal(ExitCode.BadInput, code);
        var line = error.Split('\n')[0];
        Assert.StartsWith($"error: --threads '{threads}'", line);
        Assert.Contains("thread count", line);
        Assert.DoesNotContain("layer", line);
    }

    [Fact]
    public void Step_BatchLargerThanTheData_IsOneLineNamingTheBatch()
    {
        using var data = new TinyFashion(samples: 64);

        var (code, output, error) = Run("step", "--data", data.Path, "--batch-size", "65", "--python", "none", "--nets", "784-30-10");

        Assert.Equal(ExitCode.BadInput, code);
        Assert.Equal($"error: --batch-size 65: more than the 64 training samples of {data.Path}", error.TrimEnd());
        Assert.Equal("", output);
    }

    [Fact]
    public void Step_DataOfAnotherShape_IsBadInput()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(Path.Combine(dir.Path, "train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]);
        File.WriteAllBytes(Path.Combine(dir.Path, "train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 1, 1]);
        File.WriteAllBytes(Path.Combine(dir.Path, "t10k-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]);
        File.WriteAllBytes(Path.Combine(dir.Path, "t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 1, 1]);

        var (code, _, error) = Run("step", "--nets", "784-30-10", "--data", dir.Path, "--python", "none");

        Assert.Equal(ExitCode.BadInput, code);
        Assert.Contains("expected 784 features and 10 classes", error);
    }

    [Fact]
    public void Kernels_List_GoesToBenchmarkDotNet()
    {
        // BenchmarkDotNet writes to the process's console, so only the exit code is seen here.
        var (code, _, error) = Run("kernels", "--list", "flat", "--filter", "*Optimizer*");

        Assert.Equal(ExitCode.Ok, code);
        Assert.Equal("", error);
    }

    private sealed class TempDirectory : IDisposable
    {
        public TempDirectory() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bench-tests-" + Guid.NewGuid().ToString("N"));

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
