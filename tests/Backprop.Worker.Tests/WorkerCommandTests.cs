namespace Backprop.Worker.Tests;

/// <summary>The worker's command line, run in-process.</summary>
public sealed class WorkerCommandTests
{
    private static (int ExitCode, string Output, string Error) Run(params string[] args) => Testing.ProgramOutput.Capture(WorkerCommand.Run, args);

    [Fact]
    public void Help_ListsTheOptionsAndExitsZero()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("--coordinator", output);
        Assert.Contains("--stay", output);
    }

    [Fact]
    public void NoCoordinator_IsOneLineNamingTheOption_ExitTwo()
    {
        var previous = Environment.GetEnvironmentVariable("BACKPROP_COORDINATOR");
        Environment.SetEnvironmentVariable("BACKPROP_COORDINATOR", null);
        try
        {
            var (code, _, error) = Run("--data", "digits");
            Assert.Equal(2, code);
            Assert.Equal("error: --coordinator: which coordinator to join is required (host:port, or BACKPROP_COORDINATOR)", error.Trim());
        }
        finally
        {
            Environment.SetEnvironmentVariable("BACKPROP_COORDINATOR", previous);
        }
    }

    [Theory]
    [InlineData("--threads", "0", "error: --threads '0': expected a whole number of at least 1")]
    [InlineData("--join-timeout", "soon", "error: --join-timeout 'soon': expected a positive number of seconds")]
    [InlineData("--port", "70000", "error: --port '70000': expected a port number 0-65535")]
    public void BadValue_IsOneLineNamingTheOptionAndValue_ExitTwo(string option, string value, string expected)
    {
        var (code, _, error) = Run("--coordinator", "127.0.0.1:1", option, value);
        Assert.Equal(2, code);
        Assert.Equal(expected, error.Split('\n')[0].Trim());
    }

    [Fact]
    public void CoordinatorWithABadPort_IsOneLineNamingIt_ExitTwo()
    {
        var (code, _, error) = Run("--coordinator", "node0:99999");
        Assert.Equal(2, code);
        Assert.Equal("error: --coordinator 'node0:99999': '99999' is not a port number (0-65535)", error.Trim());
    }

    [Fact]
    public void CoordinatorHostThatDoesNotResolve_IsNamedAtOnce_ThenTheJoinTimesOut()
    {
        // .invalid never resolves (RFC 2606).
        var (code, _, error) = Run("--coordinator", "no-such-host.invalid:4053", "--data", "digits", "--join-timeout", "2");
        Assert.Equal(1, code);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("warning: --coordinator no-such-host.invalid:4053: the host no-such-host.invalid does not resolve", lines[0]);
        Assert.Contains("error: could not join the coordinator at no-such-host.invalid:4053 within 2 s", error);
    }
}
