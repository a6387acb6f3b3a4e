using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Backprop.Coordinator.Tests.Clustering;

/// <summary>Real processes: a coordinator (backprop train --cluster) and two worker processes (backprop-worker).</summary>
public sealed partial class MultiProcessTests : IDisposable
{
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
        }
    }

    [GeneratedRegex(@"listening akka\.tcp://backprop@127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();

    private sealed record Running(Process Process, Task<string> Output, Task<string> Error);

    private Running Start(string dll, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        _processes.Add(process);
        return new Running(process, Task.FromResult(""), process.StandardError.ReadToEndAsync());
    }

    /// <summary>Reads <paramref name="process"/>'s output into <paramref name="lines"/> up to the first line matching <paramref name="pattern"/>.</summary>
    private static async Task<string> ReadUntil(Running process, List<string> lines, string pattern, CancellationToken cancel)
    {
        while (true)
        {
            var line = await process.Process.StandardOutput.ReadLineAsync(cancel)
                       ?? throw new InvalidOperationException("exited: " + string.Join("\n", lines) + await process.Error);
            lines.Add(line);
            if (Regex.IsMatch(line, pattern)) return line;
        }
    }

    [Fact]
    public async Task CoordinatorAndTwoWorkerProcesses_TrainTheSameModelAsOneProcess()
    {
        var oneProcess = CommandLineRunner.Run("train", "--epochs", "3", "--quiet");
        Assert.Equal(0, oneProcess.ExitCode);

        var coordinator = Start("backprop.dll", "train", "--cluster", "--port", "0", "--workers", "2", "--epochs", "3", "--quiet");
        // Read the coordinator's output line by line until it says where it listens.
        var lines = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var port = Listening().Match(await ReadUntil(coordinator, lines, Listening().ToString(), timeout.Token)).Groups[1].Value;
        var rest = coordinator.Process.StandardOutput.ReadToEndAsync();
        var workers = new[]
        {
            Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits"),
            Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits"),
        };
        var workerOutput = workers.Select(w => w.Process.StandardOutput.ReadToEndAsync()).ToArray();

        await coordinator.Process.WaitForExitAsync(timeout.Token);
        foreach (var worker in workers) await worker.Process.WaitForExitAsync(timeout.Token);

        var output = string.Join("\n", lines) + "\n" + await rest;
        Assert.True(coordinator.Process.ExitCode == 0, output + await coordinator.Error);
        Assert.Contains(oneProcess.Output.Trim(), output); // "test accuracy …, test loss …": the same model
        for (var i = 0; i < workers.Length; i++)
        {
            var text = await workerOutput[i];
            Assert.True(workers[i].Process.ExitCode == 0, text + await workers[i].Error);
            Assert.Contains("joined the cluster", text);
            Assert.Contains("run finished; leaving", text);
        }
    }

    [Fact]
    public async Task WorkerProcessKilled_HasItsPartMovedOnTheDroppedConnection_WithoutFailureDetection()
    {
        // Failure detection that would take ten minutes on every node: only the dropped connection can move the part.
        var config = Path.GetTempFileName();
        await File.WriteAllTextAsync(config, "akka.cluster.failure-detector.acceptable-heartbeat-pause = 600s");
        try
        {
            var coordinator = Start("backprop.dll", "train", "--cluster", "--port", "0", "--workers", "2", "--epochs", "40", "--verbose",
                "--config", config, "--step-timeout", "600");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            var lines = new List<string>();
            Task<string> ReadUntil(string pattern) => MultiProcessTests.ReadUntil(coordinator, lines, pattern, timeout.Token);
            var port = Listening().Match(await ReadUntil(Listening().ToString())).Groups[1].Value;
            var survivor = Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits", "--config", config);
            var victim = Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits", "--config", config);
            _ = survivor.Process.StandardOutput.ReadToEndAsync();
            _ = victim.Process.StandardOutput.ReadToEndAsync();
            await ReadUntil(@"^epoch +2/");

            victim.Process.Kill(); // SIGKILL
            // Whichever notices first: the tensor channel's connection or Akka's.
            await ReadUntil("lost the connection to worker node|the tensor channel to worker .* failed");
            var rest = await coordinator.Process.StandardOutput.ReadToEndAsync(timeout.Token);
            await coordinator.Process.WaitForExitAsync(timeout.Token);
            var output = string.Join("\n", lines) + "\n" + rest;
            Assert.True(coordinator.Process.ExitCode == 0, output + await coordinator.Error);
            Assert.Matches(@"(?m)^epoch +40/40", output);
            Assert.DoesNotContain("is unreachable", output);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task StayingWorker_ServesTheNextCoordinatorAtTheSameAddress_QuietlyWhileItWaits()
    {
        var expected = CommandLineRunner.Run("train", "--epochs", "1", "--quiet");
        Assert.Equal(0, expected.ExitCode);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(150));

        var first = Start("backprop.dll", "train", "--cluster", "--port", "0", "--workers", "1", "--epochs", "1", "--quiet");
        var firstLines = new List<string>();
        var port = Listening().Match(await ReadUntil(first, firstLines, Listening().ToString(), timeout.Token)).Groups[1].Value;
        var worker = Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits", "--stay");
        var workerLines = new List<string>();
        Assert.Contains(expected.Output.Trim(), await first.Process.StandardOutput.ReadToEndAsync(timeout.Token));
        await first.Process.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, first.Process.ExitCode);
        await ReadUntil(worker, workerLines, "^the coordinator at .* left; waiting for the next one", timeout.Token);
        var waitingFrom = workerLines.Count;
        // The worker's new node tries to join at once, before the next coordinator's process is up.
        await ReadUntil(worker, workerLines, "^worker .* joining", timeout.Token);

        // The next coordinator, at the same address: the worker rejoins and takes part.
        var second = Start("backprop.dll", "train", "--cluster", "--port", port, "--workers", "1", "--epochs", "1", "--quiet");
        var secondOutput = second.Process.StandardOutput.ReadToEndAsync(timeout.Token);
        await second.Process.WaitForExitAsync(timeout.Token);
        Assert.True(second.Process.ExitCode == 0, await secondOutput + await second.Error);
        Assert.Contains(expected.Output.Trim(), await secondOutput);
        await ReadUntil(worker, workerLines, "^the coordinator at .* left; waiting for the next one", timeout.Token);

        Assert.False(worker.Process.HasExited);
        var between = workerLines.Skip(waitingFrom).ToArray();
        Assert.Contains("run finished; staying for the next run", between); // the second coordinator's run, ended by it
        // The joins that failed while the second coordinator's process started were not logged.
        Assert.DoesNotContain(between, line => line.Contains("Tried to associate", StringComparison.Ordinal) || line.Contains("Couldn't join", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WorkerWithOtherData_IsRefusedNamingBothHashes_AndTheRunGivesUp()
    {
        var coordinator = Start("backprop.dll", "train", "--cluster", "--port", "0", "--workers", "1", "--epochs", "1", "--worker-timeout", "20", "--quiet"); // long enough for a slow worker start on a loaded machine
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var port = Listening().Match(await ReadUntil(coordinator, [], Listening().ToString(), timeout.Token)).Groups[1].Value;
        var worker = Start("backprop-worker.dll", "--coordinator", $"127.0.0.1:{port}", "--data", "digits", "--split-seed", "3");
        _ = worker.Process.StandardOutput.ReadToEndAsync();
        await worker.Process.WaitForExitAsync(timeout.Token);
        Assert.Equal(2, worker.Process.ExitCode);
        Assert.Matches("^error: data mismatch: this worker holds digits \\(1438 samples, sha256 [0-9a-f]{64}\\), the coordinator trains on 1438 samples with sha256 [0-9a-f]{64}", await worker.Error);

        await coordinator.Process.WaitForExitAsync(timeout.Token);
        Assert.Equal(1, coordinator.Process.ExitCode);
        Assert.Contains("error: no workers: 0 of 1 needed were ready after 20 s", await coordinator.Error);
    }
}
