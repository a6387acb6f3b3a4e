using System.Runtime.Intrinsics.X86;
using MathNet.Numerics.Statistics;
using Spectre.Console;

namespace Backprop.Benchmarks.Transport;

/// <summary>What <c>transport</c> prints: the machine and the method, then one table.</summary>
internal sealed class TransportReport(IAnsiConsole console)
{
    public void Facts(int repetitions, double seconds, int window)
    {
        var (model, avx512f) = Processor();
        console.Write(Tables.Facts(
        [
            ("cpu", $"{model}, {Environment.ProcessorCount} logical processors, .NET {Environment.Version}"),
            ("avx512f", avx512f),
            ("method", $"sender: this process; receiver: this program again (transport --serve), over 127.0.0.1 TCP, Nagle off; " +
                $"a message = 64-byte header + float32 payload, sent from a float[] the sender owns and landed in one pooled float[]; " +
                $"the receiver acks every message (16 bytes), the sender keeps at most {window} unacknowledged; " +
                $"{repetitions} timed runs per case of ≥ {seconds:0.##} s and ≥ {seconds * TransportCommand.BytesPerSecond / 1e6:0} MB after a warm-up of ≥ {Math.Min(0.5, seconds / 2):0.##} s, medians reported"),
            ("cpu time", "user + system of the whole process (getrusage via Environment.CpuUsage) over the timed run, per MB (10⁶ bytes) of payload"),
        ]));
    }

    public void Table(IReadOnlyList<TransportRow> rows)
    {
        var table = Tables.Create("candidate", "bytes", "sender CPU ms/MB", "receiver CPU ms/MB", "wall MB/s", "copies snd / rcv", "spread snd / rcv");
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (i > 0 && rows[i - 1].Bytes != row.Bytes) table.AddEmptyRow();
            table.AddTextRow(
                row.Label,
                $"{row.Bytes:N0}",
                $"{row.SenderMsPerMB:F3}",
                row.Receiver ? $"{row.ReceiverMsPerMB:F3}" : "-",
                $"{row.MBPerSecond:N0}",
                row.Copies,
                row.Receiver
                    ? $"{TransportRow.Spread(row.Runs.Select(r => r.SenderMsPerMB)):P0} / {TransportRow.Spread(row.Runs.Select(r => r.ReceiverMsPerMB)):P0}"
                    : $"{TransportRow.Spread(row.Runs.Select(r => r.SenderMsPerMB)):P0}");
        }
        console.Write(table);
        foreach (var line in new[]
        {
            "copies: copies of the payload in user space on the sending / receiving side; every TCP row also has the kernel's copy into",
            "and out of the socket buffer on each side (in its system time). memcpy and checksum rows: one thread, no network; their CPU",
            "is in the sender column and their throughput in wall MB/s. spread: (max − min) / median of the runs' CPU ms/MB.",
        })
        {
            console.WriteLine(line);
        }
    }

    /// <summary>The processor's model name and whether it has AVX-512F, from /proc/cpuinfo (and .NET's view of it).</summary>
    private static (string Model, string Avx512f) Processor()
    {
        string? model = null;
        var flag = false;
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon < 0) continue;
                var key = line[..colon].Trim();
                if (key == "model name") model ??= line[(colon + 1)..].Trim();
                else if (key == "flags" && line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("avx512f")) flag = true;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        var dotnet = Avx512F.IsSupported ? "used by .NET" : "not used by .NET";
        return (model ?? "unknown processor", $"{(flag ? "present" : "absent")} in /proc/cpuinfo ({dotnet})");
    }
}
