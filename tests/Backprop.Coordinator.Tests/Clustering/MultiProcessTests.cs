using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Backprop.Channel;

namespace Backprop.Coordinator.Tests.Clustering;

/// <summary>Real processes: a coordinator (backprop train --cluster) and worker processes (backprop-worker).</summary>
public sealed partial class MultiProcessTests : IDisposable
{
    private readonly List<Process> _processes = [];
    private readonly List<string> _files = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
        }
        foreach (var file in _files) File.Delete(file);
    }

    [GeneratedRegex(@"listening akka\.tcp://backprop@127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();

    private sealed record Running(Process Process, Task<string> Output, Task<string> Error);

    private Running Start(string dll, params string[] args) => StartWithFault(null, dll, args);

    /// <summary>Starts <paramref name="dll"/> with <paramref name="fault"/> in BACKPROP_FAULT (a worker's injected fault).</summary>
    private Running StartWithFault(string? fault, string dll, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (fault is not null) info.Environment["BACKPROP_FAULT"] = fault;
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

    // ---- The same bits as one process -------------------------------------------------------

    /// <summary>Generous: a run of 3 epochs takes seconds; starting four .NET processes on two loaded cores takes longer.</summary>
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(4);

    private static readonly ConcurrentDictionary<string, Lazy<byte[]>> OneProcessModels = new();

    /// <summary>The model file <c>train --workers 1 --epochs 3</c> (one process, no actors between) saves, with <paramref name="options"/>; made once per options for all tests.</summary>
    private static byte[] OneProcessModel(params string[] options) =>
        OneProcessModels.GetOrAdd(string.Join(' ', options), _ => new Lazy<byte[]>(() =>
        {
            var path = Path.Combine(Path.GetTempPath(), $"backprop-one-process-{Guid.NewGuid():N}.bpm");
            try
            {
                var run = CommandLineRunner.Run(["train", "--workers", "1", "--epochs", "3", "--quiet", "--save", path, .. options]);
                Assert.True(run.ExitCode == 0, run.Output + run.Error);
                return File.ReadAllBytes(path);
            }
            finally
            {
                File.Delete(path);
            }
        })).Value;

    private string ModelPath()
    {
        var path = Path.Combine(Path.GetTempPath(), $"backprop-mp-{Guid.NewGuid():N}.bpm");
        _files.Add(path);
        return path;
    }

    private sealed record Coordinator(Running Process, List<string> Lines, string Port);

    /// <summary>Starts <c>backprop train --cluster --port 0</c> with <paramref name="args"/> and reads its output up to where it listens.</summary>
    private async Task<Coordinator> StartCoordinator(CancellationToken cancel, params string[] args)
    {
        var coordinator = Start("backprop.dll", ["train", "--cluster", "--port", "0", .. args]);
        var lines = new List<string>();
        var port = Listening().Match(await ReadUntil(coordinator, lines, Listening().ToString(), cancel)).Groups[1].Value;
        return new Coordinator(coordinator, lines, port);
    }

    private Running StartWorker(Coordinator coordinator, string? fault = null, bool verbose = false)
    {
        string[] args = ["--coordinator", $"127.0.0.1:{coordinator.Port}", "--data", "digits"];
        return StartWithFault(fault, "backprop-worker.dll", verbose ? [.. args, "--verbose"] : args);
    }

    /// <summary>Reads the rest of <paramref name="process"/>'s output and waits for it to exit: its exit code, all its output (<paramref name="lines"/> first) and its errors.</summary>
    private static async Task<(int ExitCode, string Output, string Error)> Finish(Running process, IEnumerable<string> lines, CancellationToken cancel)
    {
        var rest = await process.Process.StandardOutput.ReadToEndAsync(cancel);
        await process.Process.WaitForExitAsync(cancel);
        return (process.Process.ExitCode, string.Join("\n", lines.Append(rest)), await process.Error);
    }

    [GeneratedRegex(@"^worker +(akka\.tcp://backprop@127\.0\.0\.1:\d+) joining")]
    private static partial Regex Joining();

    /// <summary>Reads a worker's output up to the line that gives its node's address (akka.tcp://backprop@HOST:PORT).</summary>
    private static async Task<string> WorkerAddress(Running worker, List<string> lines, CancellationToken cancel) =>
        Joining().Match(await ReadUntil(worker, lines, Joining().ToString(), cancel)).Groups[1].Value;

    [Theory]
    [InlineData(2, "allreduce")]
    [InlineData(3, "allreduce")]
    [InlineData(4, "allreduce")]
    [InlineData(2, "star")]
    [InlineData(4, "star")]
    public async Task WorkerProcesses_SaveTheModelFileOfOneProcess_BitForBit(int workers, string reduce)
    {
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        var coordinator = await StartCoordinator(timeout.Token, "--workers", $"{workers}", "--epochs", "3", "--reduce", reduce, "--save", model);
        var started = Enumerable.Range(0, workers).Select(_ => StartWorker(coordinator)).ToList();
        var finished = started.Select(w => Finish(w, [], timeout.Token)).ToList();

        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        foreach (var worker in finished)
        {
            var (workerCode, workerOutput, workerError) = await worker;
            Assert.True(workerCode == 0, workerOutput + workerError);
        }
        Assert.Equal(OneProcessModel(), await File.ReadAllBytesAsync(model, timeout.Token));
    }

    [Fact]
    public void LoopbackWorkers_SaveTheModelFileOfOneProcess_BitForBit()
    {
        var model = ModelPath();
        var run = CommandLineRunner.Run("train", "--loopback", "--workers", "3", "--epochs", "3", "--quiet", "--save", model);
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Equal(OneProcessModel(), File.ReadAllBytes(model));
    }

    // ---- A worker killed in the middle of the all-reduce --------------------------------------

    [Theory]
    [InlineData("kill-after-parts", 20)] // during the reduce-scatter: its parts are on their way, its node's totals never reach the coordinator
    [InlineData("kill-after-sums", 25)]  // during the all-gather: one of its summed segments is on its way, the others never leave
    public async Task WorkerProcessKilledDuringTheAllReduce_TheOthersFinishTheRun_WithTheModelFileOfOneProcess(string phase, int step)
    {
        // Chunks of 8: four chunks a step, so that each of the three workers computes a node in every
        // step (with the default 16 one of them has none, and a kill after its parts would never come).
        string[] chunks = ["--chunk-size", "8"];
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        var coordinator = await StartCoordinator(timeout.Token, ["--workers", "3", "--epochs", "3", "--reduce", "allreduce", "--save", model, .. chunks]);
        var survivors = new[] { StartWorker(coordinator), StartWorker(coordinator) }.Select(w => Finish(w, [], timeout.Token)).ToList();
        var victim = StartWorker(coordinator, fault: $"{phase}:{step}");
        var victimLines = new List<string>();
        var victimAddress = await WorkerAddress(victim, victimLines, timeout.Token);

        var (victimCode, victimOutput, victimError) = await Finish(victim, victimLines, timeout.Token);
        Assert.True(victimCode == 137, $"exit code {victimCode}\n{victimOutput}{victimError}"); // 128 + SIGKILL
        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        Assert.Matches($@"(?m)^step {step}: participant {Regex.Escape(victimAddress)}/\S+ was lost", output);
        foreach (var survivor in survivors)
        {
            var (survivorCode, survivorOutput, survivorError) = await survivor;
            Assert.True(survivorCode == 0, survivorOutput + survivorError);
        }
        Assert.Equal(OneProcessModel(chunks), await File.ReadAllBytesAsync(model, timeout.Token));
    }

    // ---- Bad input on a worker's data port ----------------------------------------------------

    [GeneratedRegex(@"tensor channel listening at (\S+):(\d+)$")]
    private static partial Regex ChannelListening();

    [GeneratedRegex(@"joined run ([0-9a-f]{32})")]
    private static partial Regex JoinedRun();

    /// <summary>A frame as the channel writes it: the header (with the checksum of it and the payload), then the payload.</summary>
    private static byte[] Frame(FrameHeader header, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[FrameHeader.Size + payload.Length];
        header.Write(bytes, payload);
        payload.CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    private static byte[] Hello(string endpoint)
    {
        var payload = FrameHeader.HelloPayload(endpoint);
        return Frame(new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: payload.Length), payload);
    }

    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/>, writes <paramref name="bytes"/>, and closes: the local endpoint it wrote from.</summary>
    private static async Task<string> SendAndClose(string host, int port, byte[] bytes, CancellationToken cancel)
    {
        using var client = new TcpClient(AddressFamily.InterNetwork); // its endpoint as the worker names it: 127.0.0.1:PORT
        await client.ConnectAsync(host, port, cancel);
        var from = client.Client.LocalEndPoint!.ToString()!;
        await client.GetStream().WriteAsync(bytes, cancel);
        return from;
    }

    [Fact]
    public async Task CorruptTruncatedAndRandomBytesOnAWorkersDataPort_AreRejected_AndTheRunSavesTheModelFileOfOneProcess()
    {
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        // Three workers: the bad bytes come while the run waits for its third, so that nothing races with its end.
        var coordinator = await StartCoordinator(timeout.Token, "--workers", "3", "--epochs", "3", "--reduce", "allreduce", "--save", model, "--worker-timeout", "240");
        var target = StartWorker(coordinator, verbose: true);
        var other = Finish(StartWorker(coordinator), [], timeout.Token);
        var targetLines = new List<string>();
        var listening = ChannelListening().Match(await ReadUntil(target, targetLines, ChannelListening().ToString(), timeout.Token));
        var (host, port) = (listening.Groups[1].Value, int.Parse(listening.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        // Set up for the run: its channel takes frames of the run's size from now on.
        var run = Guid.ParseExact(JoinedRun().Match(await ReadUntil(target, targetLines, JoinedRun().ToString(), timeout.Token)).Groups[1].Value, "N");

        // A Part frame of the run whose payload changed after its checksum was computed.
        var values = new float[100];
        values.AsSpan().Fill(0.25f);
        var part = Frame(new FrameHeader(FrameKind.Part, run, 0, 0, 0, 1, Count: values.Length, Segment: 0), FrameHeader.Bytes(values));
        part[^1] ^= 0x40;
        await SendAndClose(host, port, [.. Hello("corrupt.test:1"), .. part], timeout.Token);
        // A header announcing 100 values, 40 bytes of them, and the connection closed.
        var announced = Frame(new FrameHeader(FrameKind.Part, run, 0, 0, 0, 1, Count: values.Length, Segment: 0), FrameHeader.Bytes(values));
        await SendAndClose(host, port, [.. Hello("truncated.test:1"), .. announced.AsSpan(0, FrameHeader.Size + 40)], timeout.Token);
        // Bytes that are not a frame, without a Hello.
        var noise = new byte[1000];
        new Random(7).NextBytes(noise);
        var noiseFrom = await SendAndClose(host, port, noise, timeout.Token);

        var expected = new List<string>
        {
            @"rejecting the connection from corrupt\.test:1: a Part frame of step 0 whose checksum does not match",
            @"tensor channel: truncated\.test:1 closed the connection",
            $@"rejecting the connection from tcp:{Regex.Escape(noiseFrom)}: not a tensor-channel frame",
        };
        try
        {
            while (expected.Count > 0)
            {
                var line = await ReadUntil(target, targetLines, string.Join("|", expected), timeout.Token);
                expected.RemoveAll(pattern => Regex.IsMatch(line, pattern));
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the worker did not log {string.Join(" nor ", expected)}:\n{string.Join("\n", targetLines)}");
        }

        var last = Finish(StartWorker(coordinator), [], timeout.Token);
        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        foreach (var worker in new[] { Finish(target, targetLines, timeout.Token), other, last })
        {
            var (workerCode, workerOutput, workerError) = await worker;
            Assert.True(workerCode == 0, workerOutput + workerError);
        }
        Assert.Equal(OneProcessModel(), await File.ReadAllBytesAsync(model, timeout.Token));
    }

    // ---- The replica check ---------------------------------------------------------------------

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task PerturbedReplica_FailsTheRunAtTheNextCheck_NamingItsWorker(int workers)
    {
        using var timeout = new CancellationTokenSource(RunTimeout);
        // Checked every 5 steps; the weight changes after the update that makes version 10, whose hash step 10 compares.
        var coordinator = await StartCoordinator(timeout.Token, "--workers", $"{workers}", "--epochs", "3", "--reduce", "allreduce", "--check-replicas-every", "5");
        var others = Enumerable.Range(1, workers - 1).Select(_ => StartWorker(coordinator)).ToList();
        var othersLines = others.Select(_ => new List<string>()).ToList();
        var perturbed = StartWorker(coordinator, fault: "perturb:10");
        var perturbedLines = new List<string>();
        var perturbedAddress = await WorkerAddress(perturbed, perturbedLines, timeout.Token);
        var otherAddresses = new List<string>();
        for (var i = 0; i < others.Count; i++) otherAddresses.Add(await WorkerAddress(others[i], othersLines[i], timeout.Token));
        var finished = others.Select((w, i) => Finish(w, othersLines[i], timeout.Token)).Append(Finish(perturbed, perturbedLines, timeout.Token)).ToList();

        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code != 0, output + error);
        Assert.Contains("error: step 10: the replicas differ: ", error);
        if (workers == 2)
        {
            // One against one: the message cannot tell which replica is wrong, but names both.
            Assert.Matches($@"the replicas differ: .*{Regex.Escape(perturbedAddress)}/", error);
            Assert.Matches($@"the replicas differ: .*{Regex.Escape(otherAddresses[0])}/", error);
        }
        else
        {
            // The odd one out is the perturbed replica; the others agree.
            Assert.Matches($@"the weights and optimizer state of {Regex.Escape(perturbedAddress)}/\S+ \([0-9a-f]{{16}}\) do not match those of ", error);
            foreach (var address in otherAddresses) Assert.Matches($@"do not match those of .*{Regex.Escape(address)}/", error);
        }
        foreach (var worker in finished) await worker; // they leave when the run ends
    }

    // ---- Bad workers -----------------------------------------------------------------------------

    [Theory]
    [InlineData("star")]
    [InlineData("allreduce")]
    public async Task WorkerSendingWrongGradients_IsShownWrongByTwoOthers_SetAside_AndTheRunSavesTheModelFileOfOneProcess(string reduce)
    {
        // Chunks of 8: every one of the three workers computes a node in every step.
        string[] chunks = ["--chunk-size", "8"];
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        var coordinator = await StartCoordinator(timeout.Token, ["--workers", "3", "--epochs", "3", "--reduce", reduce, "--verify-fraction", "1", "--save", model, .. chunks]);
        var honest = new[] { StartWorker(coordinator), StartWorker(coordinator) }.Select(w => Finish(w, [], timeout.Token)).ToList();
        var bad = StartWorker(coordinator, fault: "wrong-gradients:5"); // its gradients × −20 from step 5 on: finite, and wrong
        var badLines = new List<string>();
        var badAddress = await WorkerAddress(bad, badLines, timeout.Token);

        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        Assert.Matches($@"(?m)^worker {Regex.Escape(badAddress)}/\S+ is set aside for the rest of the run: ", output);
        Assert.Matches($@"(?m)^step 5: worker {Regex.Escape(badAddress)}/\S+ is wrong: ", output);
        Assert.Single(Regex.Matches(output, "is set aside for the rest of the run")); // the honest ones are not
        foreach (var worker in honest)
        {
            var (workerCode, workerOutput, workerError) = await worker;
            Assert.True(workerCode == 0, workerOutput + workerError);
        }
        Assert.Equal(OneProcessModel(chunks), await File.ReadAllBytesAsync(model, timeout.Token));
    }

    [Theory]
    [InlineData("star")]
    [InlineData("allreduce")]
    public async Task WorkerWhoseComputeHangs_IsSetAsideAfterItsStrikes_AndTheRunSavesTheModelFileOfOneProcess(string reduce)
    {
        // Its node stays up and heartbeats, but from step 2 on its computations never return.
        string[] chunks = ["--chunk-size", "8"];
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        var coordinator = await StartCoordinator(timeout.Token,
            ["--workers", "3", "--epochs", "3", "--reduce", reduce, "--step-timeout", "2", "--max-strikes", "2", "--verify-fraction", "0", "--save", model, .. chunks]);
        var others = new[] { StartWorker(coordinator), StartWorker(coordinator) }.Select(w => Finish(w, [], timeout.Token)).ToList();
        var hung = StartWorker(coordinator, fault: "hang-compute:2");
        var hungLines = new List<string>();
        var hungAddress = await WorkerAddress(hung, hungLines, timeout.Token);

        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        var worker = $@"worker {Regex.Escape(hungAddress)}/\S+";
        Assert.Matches($@"(?m)^{worker}: strike 1 of 2: missed the 2 s deadline of step 2$", output);
        Assert.Matches($@"(?m)^{worker}: strike 2 of 2: missed the 2 s deadline of step 3$", output);
        Assert.Matches($@"(?m)^{worker} is set aside for the rest of the run: 2 strikes in a row", output);
        Assert.DoesNotMatch($@"(?m)^{worker}: strike 3", output);
        foreach (var other in others)
        {
            var (otherCode, otherOutput, otherError) = await other;
            Assert.True(otherCode == 0, otherOutput + otherError);
        }
        Assert.Equal(OneProcessModel(chunks), await File.ReadAllBytesAsync(model, timeout.Token));
        if (reduce == "allreduce")
        {
            // Its actor cannot stop, but the process leaves anyway once the coordinator is gone.
            var (hungCode, hungOutput, hungError) = await Finish(hung, hungLines, timeout.Token);
            Assert.True(hungCode == 1, hungOutput + hungError);
            Assert.Contains("did not stop within 20 s of leaving", hungError);
        }
    }

    [Fact]
    public async Task OwnerThatHangsAfterItsParts_LeavesTheStepAtTheNextDeadline_IsSetAside_AndTheRunSavesTheModelFileOfOneProcess()
    {
        // In step 4 it sends its parts and its node's totals, then its actor never returns: the segments
        // it owns are never added up, so no participant can complete the step.
        string[] chunks = ["--chunk-size", "8"];
        using var timeout = new CancellationTokenSource(RunTimeout);
        var model = ModelPath();
        var coordinator = await StartCoordinator(timeout.Token,
            ["--workers", "3", "--epochs", "3", "--reduce", "allreduce", "--step-timeout", "2", "--max-strikes", "2", "--verify-fraction", "0", "--save", model, .. chunks]);
        var others = new[] { StartWorker(coordinator), StartWorker(coordinator) }.Select(w => Finish(w, [], timeout.Token)).ToList();
        var hung = StartWorker(coordinator, fault: "hang-after-parts:4");
        var hungAddress = await WorkerAddress(hung, [], timeout.Token);

        var (code, output, error) = await Finish(coordinator.Process, coordinator.Lines, timeout.Token);
        Assert.True(code == 0, output + error);
        var worker = $@"worker {Regex.Escape(hungAddress)}/\S+";
        Assert.Matches(@"(?m)^step 4: no participant holds every segment after the 2 s deadline; asking the participants whether they still answer$", output);
        Assert.Matches($@"(?m)^{worker}: strike 1 of 2: did not answer within the 2 s deadline of step 4$", output);
        Assert.Matches($@"(?m)^step 4: participant {Regex.Escape(hungAddress)}/\S+ does not answer; its segments and nodes go to the 2 others$", output);
        Assert.Matches($@"(?m)^{worker} is set aside for the rest of the run: 2 strikes in a row", output);
        foreach (var other in others)
        {
            var (otherCode, otherOutput, otherError) = await other;
            Assert.True(otherCode == 0, otherOutput + otherError);
        }
        Assert.Equal(OneProcessModel(chunks), await File.ReadAllBytesAsync(model, timeout.Token));
    }
}
