using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text;
using Backprop.CommandLine;
using MathNet.Numerics.Statistics;
using NetMQ;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// <c>transport</c>: the tensor-channel candidates moving the same float32 tensors over loopback TCP from
/// this process to a second one (this program again, <c>transport --serve NAME</c>), with the process CPU
/// time of each side per MB of payload, beside a single-thread memcpy and the checksums of the same sizes.
/// </summary>
internal sealed class TransportCommand
{
    /// <summary>The reference nets' parameters as float32: 784-30-10, 784-256-128-10, 784-1024-1024-10 (rounded).</summary>
    public static readonly int[] DefaultSizes = [95_440, 940_000, 7_460_000];

    /// <summary>Each timed run moves at least this much payload per second of --seconds, however quick the run.</summary>
    public const double BytesPerSecond = 200e6;

    private readonly Option<int> _repetitions = new("--repetitions") { Description = "Timed runs per case (the median is reported)", DefaultValueFactory = _ => 5 };
    private readonly Option<double> _seconds = new("--seconds") { Description = "Approximate length of one timed run", DefaultValueFactory = _ => 1.0 };
    private readonly Option<int> _window = new("--window") { Description = "Messages the sender may have unacknowledged (the receiver acks every message)", DefaultValueFactory = _ => 2 };
    private readonly Option<int[]?> _sizes = new Option<int[]?>("--sizes")
    {
        Description = $"Payload sizes in bytes, comma-separated, multiples of 4 (default {string.Join(',', DefaultSizes)})",
        HelpName = "BYTES,BYTES,...",
        Arity = ArgumentArity.ExactlyOne,
    }.WithParser(ParseSizes);
    private readonly Option<string> _candidates = new("--candidates")
    {
        Description = $"Candidates to run, comma-separated, or all ({Candidate.Names})",
        DefaultValueFactory = _ => "all",
    };
    private readonly Option<bool> _noFloors = new("--no-floors") { Description = "Skip the memcpy and checksum rows" };
    private readonly Option<string?> _serve = new("--serve") { Description = "Be the receiving process of a candidate (the bench starts it itself)", Hidden = true };
    private readonly Option<int> _port = new("--port") { Description = "The port the receiving process listens on (0: any; it prints the one it took)", Hidden = true };

    public Command Build()
    {
        var command = new Command("transport", "Measure the tensor-channel transports between two processes: CPU per MB on each side, beside memcpy and checksums");
        foreach (var option in new Option[] { _repetitions, _seconds, _window, _sizes, _candidates, _noFloors, _serve, _port })
            command.Options.Add(option);
        command.SetAction(result => Run(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error));
        return command;
    }

    private static (int[]? Value, string? Error) ParseSizes(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) || values[i] < 4 || values[i] % 4 != 0 || values[i] > 1 << 30)
                return (null, $"'{parts[i]}' is not a payload size (bytes, a positive multiple of 4 up to 1 GiB, like 95440)");
        }
        return (values, null);
    }

    private int Run(ParseResult result, TextWriter output, TextWriter error)
    {
        if (result.GetValue(_serve) is { } serve)
        {
            var candidate = Candidate.Find(serve) ?? throw new InvalidInputException($"--serve {serve}: expected one of {Candidate.Names}");
            Serve(candidate, result.GetValue(_port), output);
            return ExitCode.Ok;
        }
        var repetitions = result.GetValue(_repetitions);
        var seconds = result.GetValue(_seconds);
        var window = result.GetValue(_window);
        if (repetitions < 1 || window < 1 || !(seconds > 0)) throw new InvalidInputException("--repetitions, --window and --seconds must be positive");
        var sizes = result.GetValue(_sizes) is { Length: > 0 } given ? given : DefaultSizes;
        var candidates = Select(result.GetValue(_candidates)!);

        var report = new TransportReport(Tables.ConsoleFor(output));
        report.Facts(repetitions, seconds, window);
        var rows = new List<TransportRow>();
        try
        {
            foreach (var bytes in sizes)
            {
                foreach (var candidate in candidates)
                {
                    error.WriteLine($"measuring {candidate.Name} at {bytes:N0} bytes…");
                    var (runs, messages) = Measure(candidate, bytes, repetitions, seconds, window);
                    error.WriteLine($"  {messages:N0} messages, {messages * (double)bytes / 1e6:N0} MB in the case, warm-up included");
                    rows.Add(new TransportRow(candidate.Label, bytes, candidate.Copies, runs, Receiver: true));
                }
                if (result.GetValue(_noFloors)) continue;
                foreach (var (label, copies, body) in Floors.All)
                {
                    error.WriteLine($"measuring {label} at {bytes:N0} bytes…");
                    rows.Add(new TransportRow(label, bytes, copies, Floors.Measure(body, bytes, repetitions, Math.Min(seconds, 0.5)), Receiver: false));
                }
            }
        }
        finally
        {
            if (candidates.Any(c => c is NetMqCandidate)) NetMQConfig.Cleanup(block: false);
        }
        report.Table(rows);
        return ExitCode.Ok;
    }

    private static Candidate[] Select(string names)
    {
        if (names.Equals("all", StringComparison.OrdinalIgnoreCase)) return [.. Candidate.All];
        var chosen = new List<Candidate>();
        foreach (var name in names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            chosen.Add(Candidate.Find(name) ?? throw new InvalidInputException($"--candidates {names}: expected some of {Candidate.Names}, or all"));
        return chosen.Count > 0 ? [.. chosen.Distinct()] : throw new InvalidInputException($"--candidates {names}: expected some of {Candidate.Names}, or all");
    }

    /// <summary>The receiving process: listens, prints "port N", serves one session, returns.</summary>
    public static void Serve(Candidate candidate, int port, TextWriter output)
    {
        try
        {
            OnOwnThread(() =>
            {
                using var listener = candidate.Listen(port);
                output.WriteLine($"port {listener.Port}");
                output.Flush();
                using var link = listener.Accept();
                return Receiver.ServeAsync(link).AsTask().GetAwaiter().GetResult();
            });
        }
        finally
        {
            if (candidate is NetMqCandidate) NetMQConfig.Cleanup(block: false);
        }
    }

    /// <summary>
    /// One case: a receiving process, a warm-up that also sizes the runs, then <paramref name="repetitions"/>
    /// timed runs of at least <paramref name="seconds"/> and <paramref name="seconds"/> × <see cref="BytesPerSecond"/> each.
    /// Also returns how many tensors went in all, warm-up included.
    /// </summary>
    private static (RunResult[] Runs, long Messages) Measure(Candidate candidate, int bytes, int repetitions, double seconds, int window)
    {
        using var peer = ReceivingProcess.Start(candidate);
        return OnOwnThread(() =>
        {
            using var link = candidate.Connect(peer.Port);
            using var sender = new Sender(link, bytes / sizeof(float), window);
            // Warm-up: doubling runs until one takes a quarter of a run's time and all half of it (at most
            // 0.25 s and 0.5 s); the last one's rate sizes the timed runs.
            var (probeSeconds, warmSeconds) = (Math.Min(0.25, seconds / 4), Math.Min(0.5, seconds / 2));
            var warm = TimeSpan.Zero;
            var n = 8L;
            var messages = 0L;
            RunResult probe;
            while (true)
            {
                probe = sender.TimeAsync(n).AsTask().GetAwaiter().GetResult();
                warm += probe.Wall;
                messages += n;
                if (probe.Wall.TotalSeconds >= probeSeconds && warm.TotalSeconds >= warmSeconds) break;
                if (probe.Wall.TotalSeconds < probeSeconds) n *= 2;
            }
            var count = Math.Max((long)Math.Ceiling(seconds * n / probe.Wall.TotalSeconds), (long)Math.Ceiling(seconds * BytesPerSecond / bytes));
            var runs = new RunResult[repetitions];
            for (var r = 0; r < repetitions; r++) runs[r] = sender.TimeAsync(count).AsTask().GetAwaiter().GetResult();
            sender.EndAsync().AsTask().GetAwaiter().GetResult();
            peer.WaitForExit();
            return (runs, messages + repetitions * count);
        });
    }

    /// <summary>Runs <paramref name="body"/> on a thread of its own (the channel's dedicated thread) and waits for it.</summary>
    public static T OnOwnThread<T>(Func<T> body)
    {
        T value = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                value = body();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        { IsBackground = true, Name = "tensor channel" };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return value;
    }
}

/// <summary>This program started again as <c>transport --serve NAME</c>: the receiving side of one case.</summary>
internal sealed class ReceivingProcess : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly StringBuilder _errors;

    private ReceivingProcess(Process process, int port, StringBuilder errors)
    {
        _process = process;
        Port = port;
        _errors = errors;
    }

    public int Port { get; }

    public static ReceivingProcess Start(Candidate candidate)
    {
        var start = CommandLineOfThisProgram();
        foreach (var a in new[] { "transport", "--serve", candidate.Name, "--port", "0" }) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        var errors = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (errors) errors.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        var line = process.StandardOutput.ReadLineAsync();
        var port = 0;
        if (!line.Wait(Patience) || line.Result is not { } text || !text.StartsWith("port ", StringComparison.Ordinal)
            || !int.TryParse(text.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            if (!process.HasExited) process.Kill();
            process.WaitForExit();
            lock (errors) throw new InvalidOperationException($"the receiving process for {candidate.Name} did not start: {errors.ToString().Trim()}");
        }
        return new ReceivingProcess(process, port, errors);
    }

    /// <summary>How to start this program again: its apphost beside the assembly, else dotnet with the assembly.</summary>
    private static ProcessStartInfo CommandLineOfThisProgram()
    {
        var assembly = typeof(ReceivingProcess).Assembly.Location;
        var apphost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        if (File.Exists(apphost)) return new ProcessStartInfo(apphost);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet");
        start.ArgumentList.Add(assembly);
        return start;
    }

    /// <summary>Waits for the process to end after its session, and fails when it failed.</summary>
    public void WaitForExit()
    {
        if (!_process.WaitForExit(Patience)) throw new InvalidOperationException("the receiving process did not stop after its session");
        _process.WaitForExit();
        if (_process.ExitCode != 0)
        {
            lock (_errors) throw new InvalidOperationException($"the receiving process failed ({_process.ExitCode}): {_errors.ToString().Trim()}");
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}

/// <summary>One row: a candidate (or a floor) at a size, and its runs.</summary>
internal sealed record TransportRow(string Label, int Bytes, string Copies, RunResult[] Runs, bool Receiver)
{
    public double SenderMsPerMB => Runs.Select(r => r.SenderMsPerMB).Median();
    public double ReceiverMsPerMB => Runs.Select(r => r.ReceiverMsPerMB).Median();
    public double MBPerSecond => Runs.Select(r => r.MBPerSecond).Median();

    /// <summary>(max − min) / median of a side's ms/MB over the runs.</summary>
    public static double Spread(IEnumerable<double> values)
    {
        var v = values.ToArray();
        return (v.Max() - v.Min()) / v.Median();
    }
}
