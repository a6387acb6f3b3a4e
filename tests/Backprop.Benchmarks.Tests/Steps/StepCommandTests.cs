using System.Text.RegularExpressions;
using Backprop.Benchmarks.Steps;
using Backprop.CommandLine;

namespace Backprop.Benchmarks.Tests.Steps;

/// <summary>
/// Whole <c>step</c> runs on a tiny data set of Fashion-MNIST's shape, at the shortest timings, with a
/// stand-in for python that answers as bench/pytorch_bench.py --serve does: what is printed, and when a
/// ratio against PyTorch is refused.
/// </summary>
public sealed class StepCommandTests : IDisposable
{
    private const string FitHeader = """{"torch": "9.9", "blas": "OpenBLAS 0.3.21 Haswell", "torch_sgemm": "/usr/lib/openblas-pthread/libblas.so.3", "mkl": false, "openblas_is_torch_blas": true}""";
    private readonly TinyFashion _data = new();
    private readonly string _scripts = Path.Combine(Path.GetTempPath(), "fake-python-" + Guid.NewGuid().ToString("N"));

    public StepCommandTests() => Directory.CreateDirectory(_scripts);

    public void Dispose()
    {
        _data.Dispose();
        Directory.Delete(_scripts, recursive: true);
    }

    /// <summary>
    /// An executable that passes for a python with torch: "-c …" prints a version; otherwise it prints
    /// <paramref name="header"/>, then answers each request with 1000 samples/s on the requested threads
    /// plus <paramref name="extraThreads"/>.
    /// </summary>
    private string FakePython(string header, int extraThreads = 0)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the stand-in for python is a shell script");
        var path = Path.Combine(_scripts, $"python-{Guid.NewGuid():N}");
        File.WriteAllText(path, $$"""
            #!/bin/sh
            if [ "$1" = -c ]; then echo 9.9; exit 0; fi
            echo '{{header}}'
            while read -r line; do
              threads=$(echo "$line" | sed -E 's/.*"threads":([0-9]+).*/\1/')
              echo "{\"samples_per_second\": 1000.0, \"threads\": $((threads + {{extraThreads}})), \"blas_threads\": $threads}"
            done
            """.Replace("\r\n", "\n"));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private (int Code, string Output, string Error) Step(string python, params string[] more) =>
        BenchProgramTests.Run([
            "step", "--data", _data.Path, "--nets", "784-30-10", "--batch-size", "16", "--chunk-size", "4",
            "--repetitions", "3", "--seconds", "0.001", "--python", python, .. more.Contains("--threads") ? more : [.. more, "--threads", "1"]]);

    /// <summary>The output with every run of white space as one space: the facts wrap their long lines.</summary>
    private static string Flat(string output) => Regex.Replace(output, @"\s+", " ");

    /// <summary>The cells of the throughput table's row at <paramref name="threads"/> threads (the table's rows follow its rule, up to a blank line).</summary>
    private static string[] Row(string output, int threads = 1)
    {
        var lines = output.Split('\n').Select(l => l.TrimEnd()).ToArray();
        var header = Array.FindIndex(lines, l => l.Contains("ours samples/s", StringComparison.Ordinal));
        var rows = lines.Skip(header + 2).TakeWhile(l => l.Length > 0)
            .Select(l => l.Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(cells => cells.Length == 7 ? ["", .. cells] : cells); // the net is named in its first row only
        return rows.Single(cells => cells[1] == $"{threads}");
    }

    [Fact]
    public void Step_NoPython_PrintsTheFactsAndOurRowWithoutPyTorch()
    {
        var (code, output, error) = Step("none", "--threads", "1,2");

        Assert.True(code == ExitCode.Ok, error);
        Assert.Contains("pytorch  skipped (--python none)", output);
        Assert.Contains($"{_data.Path}: 64 training samples; batch 16, chunk 4; 3 repetitions", output);
        var one = Row(output, 1);
        Assert.Equal("784-30-10 logistic/logistic quadratic", one[0]);
        Assert.Equal(["-", "-", "-"], one[^3..]);
        Assert.Equal("2", Row(output, 2)[1]);
        Assert.Contains("measuring 784-30-10 on 2 threads", error);
        Assert.Equal(OpenBlas.IsAvailable, output.Contains("GEMMs alone", StringComparison.Ordinal));
    }

    [Fact]
    public void Step_APyTorchOnTheThreadsAskedFor_GetsItsRatio()
    {
        if (!OperatingSystem.IsLinux()) return; // the stand-in is a shell script

        var (code, output, error) = Step(FakePython(FitHeader));

        Assert.Equal(ExitCode.Ok, code);
        Assert.Contains("torch 9.9 on OpenBLAS 0.3.21 Haswell; the threads of each of its repetitions are checked", Flat(output));
        var row = Row(output);
        Assert.Equal("1,000", row[5]);
        Assert.Matches(@"^\d+\.\d\d$", row[6]);
        Assert.Matches(@"^\d+\.\d\d–\d+\.\d\d$", row[7]);
        Assert.DoesNotContain("warning", error);
    }

    [Fact]
    public void Step_APyTorchOnTheReferenceBlas_IsRefusedWithItsReason()
    {
        if (!OperatingSystem.IsLinux()) return;
        var header = """{"torch": "9.9", "blas": "OpenBLAS 0.3.21", "torch_sgemm": "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0", "mkl": false, "openblas_is_torch_blas": false}""";

        var (code, output, error) = Step(FakePython(header));

        Assert.True(code == ExitCode.Ok, error);
        Assert.Contains("torch 9.9: torch's sgemm_ is in /usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0, not in MKL", Flat(output));
        Assert.Contains("; no PyTorch columns", Flat(output));
        Assert.Equal(["-", "-", "-"], Row(output)[^3..]);
        Assert.DoesNotContain("PyTorch's", output); // not among the paired sides
    }

    [Fact]
    public void Step_APyTorchThatRanOnMoreThreads_GetsNoRatio()
    {
        if (!OperatingSystem.IsLinux()) return;

        var (code, output, error) = Step(FakePython(FitHeader, extraThreads: 1));

        Assert.Equal(ExitCode.Ok, code);
        Assert.Contains("torch ran on 2 threads where 1 were asked for; PyTorch columns left empty from here on", error);
        Assert.Equal(["-", "-", "-"], Row(output)[^3..]);
    }

    [Fact]
    public void Step_Phases_ListEveryProductOfEveryLayerAndTheWholeStep()
    {
        var (code, output, _) = Step("none", "--phases");

        Assert.Equal(ExitCode.Ok, code);
        Assert.Contains("phases of 784-30-10 logistic/logistic quadratic: one step on 1 thread, batch 16, chunk 4", output);
        foreach (var phase in new[] { "forward o1 = f(o0·W0ᵀ + b0)", "forward o2 = f(o1·W1ᵀ + b1)", "∂C/∂W1 = Δ1ᵀ·o1", "Δ0 = (Δ1·W1) ⊙ f'(o1)", "∂C/∂W0 = Δ0ᵀ·o0", "SGD update" })
            Assert.Contains(phase, output);
        Assert.Contains(OpenBlas.IsAvailable ? "step (OpenBLAS: its products alone)" : "step", output);
    }
}
