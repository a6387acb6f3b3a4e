using System.Diagnostics;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// What a tensor of the same size costs one thread without a network: a copy (Span.CopyTo, the floor
/// of any transport that copies once more) and each checksum the frame could carry.
/// </summary>
internal static class Floors
{
    /// <summary>The single-thread operations, in the table's order, each over the payload's bytes.</summary>
    public static IReadOnlyList<(string Label, string Copies, Func<float[], float[], ulong> Body)> All { get; } =
    [
        ("memcpy (Span.CopyTo)", "1", (source, destination) =>
        {
            source.AsSpan().CopyTo(destination);
            return 0;
        }),
        ("Crc32 (System.IO.Hashing)", "read", (source, _) => Crc32.HashToUInt32(MemoryMarshal.AsBytes(source.AsSpan()))),
        ("XxHash64", "read", (source, _) => XxHash64.HashToUInt64(MemoryMarshal.AsBytes(source.AsSpan()))),
        ("XxHash3 (64-bit)", "read", (source, _) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(source.AsSpan()))),
    ];

    /// <summary>
    /// Runs <paramref name="body"/> over tensors of <paramref name="bytes"/> bytes: a warm-up, then
    /// <paramref name="repetitions"/> runs of about <paramref name="seconds"/> each. CPU is the process's
    /// (the body runs on this thread, nothing else does).
    /// </summary>
    public static RunResult[] Measure(Func<float[], float[], ulong> body, int bytes, int repetitions, double seconds)
    {
        var floats = bytes / sizeof(float);
        var source = new float[floats];
        var destination = new float[floats];
        new Random(floats).NextBytes(MemoryMarshal.AsBytes(source.AsSpan()));
        ulong sink = 0;
        RunResult Run(long count)
        {
            var cpu0 = ProcessCpu.Now;
            var start = Stopwatch.GetTimestamp();
            for (long i = 0; i < count; i++) sink ^= body(source, destination);
            var wall = Stopwatch.GetElapsedTime(start);
            var cpu = ProcessCpu.Now - cpu0;
            return new RunResult(count, count * bytes, wall, cpu, TimeSpan.Zero);
        }
        var probe = Run(1);
        var n = 1L;
        while (probe.Wall.TotalSeconds < 0.2)
        {
            n *= 2;
            probe = Run(n);
        }
        var count = Math.Max(1, (long)(seconds * n / probe.Wall.TotalSeconds));
        var results = new RunResult[repetitions];
        for (var r = 0; r < repetitions; r++) results[r] = Run(count);
        GC.KeepAlive(sink);
        return results;
    }
}
