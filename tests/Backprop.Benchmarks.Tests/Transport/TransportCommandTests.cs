using Backprop.CommandLine;

namespace Backprop.Benchmarks.Tests.Transport;

/// <summary>
/// The <c>transport</c> command: its options, bad input as one line and exit code 2, and a whole run at the
/// shortest timings, which starts this program again as the receiving process.
/// </summary>
[Collection(TensorChannel.Collection)]
public class TransportCommandTests
{
    [Fact]
    public void Help_ListsTheOptionsAndTheCandidates_NotTheReceiversOwn()
    {
        var (code, output, _) = BenchProgramTests.Run("transport", "--help");

        Assert.Equal(ExitCode.Ok, code);
        foreach (var option in new[] { "--repetitions", "--seconds", "--window", "--sizes", "--candidates", "--no-floors" })
            Assert.Contains(option, output);
        Assert.Contains("socket, stream, async, pipelines, pipelines-128k, netmq, netmq-pooled", output);
        Assert.DoesNotContain("--serve", output);
    }

    [Theory]
    [InlineData(new[] { "transport", "--candidates", "nope" }, "error: --candidates nope: expected some of socket, stream, async, pipelines, pipelines-128k, netmq, netmq-pooled, or all")]
    [InlineData(new[] { "transport", "--repetitions", "0" }, "error: --repetitions, --window and --seconds must be positive")]
    [InlineData(new[] { "transport", "--serve", "nope" }, "error: --serve nope: expected one of socket, stream, async, pipelines, pipelines-128k, netmq, netmq-pooled")]
    public void BadInput_OneLineAndExitCode2(string[] args, string expected)
    {
        var (code, output, error) = BenchProgramTests.Run(args);

        Assert.Equal(ExitCode.BadInput, code);
        Assert.Equal(expected, error.TrimEnd());
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("6")]
    [InlineData("0")]
    [InlineData("95440,x")]
    public void Sizes_NotMultiplesOfFour_AreParseErrorsNamingTheValue(string sizes)
    {
        var (code, _, error) = BenchProgramTests.Run("transport", "--sizes", sizes);

        Assert.Equal(ExitCode.BadInput, code);
        Assert.StartsWith($"error: --sizes '{sizes}'", error);
        Assert.Contains("multiple of 4", error);
    }

    [Fact]
    public void AShortRun_PrintsTheMachineAndARowPerCandidateAndFloor()
    {
        var (code, output, error) = BenchProgramTests.Run(
            "transport", "--candidates", "socket,netmq", "--sizes", "40000", "--repetitions", "2", "--seconds", "0.05");

        Assert.True(code == ExitCode.Ok, error);
        Assert.Contains("avx512f", output);
        foreach (var row in new[] { "Socket, blocking", "NetMQ, default GC buffers", "memcpy (Span.CopyTo)", "Crc32", "XxHash64", "XxHash3" })
            Assert.Contains(row, output);
        Assert.Contains("40,000", output);
        Assert.DoesNotContain("Pipelines", output);
    }
}
