using System.Diagnostics.Metrics;

namespace Backprop.Protocol;

/// <summary>
/// What the serializer measures, as .NET metrics (meter "Backprop.Wire"): bytes written and read,
/// and seconds spent serializing and deserializing. Any MeterListener (or dotnet-counters) can
/// read them; <see cref="WireStatistics"/> sums them for the step-time breakdown.
/// </summary>
public static class WireMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Backprop.Wire";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Bytes produced by the serializer (a cached broadcast counts once per send).</summary>
    public static readonly Counter<long> BytesWritten = Meter.CreateCounter<long>("backprop.wire.bytes_written", "By");
    /// <summary>Bytes read by the serializer.</summary>
    public static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("backprop.wire.bytes_read", "By");
    /// <summary>Seconds spent in serialization and deserialization.</summary>
    public static readonly Counter<double> Seconds = Meter.CreateCounter<double>("backprop.wire.seconds", "s");
}

/// <summary>Running totals of <see cref="WireMetrics"/> in this process, from the moment it is created.</summary>
public sealed class WireStatistics : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _bytesWritten, _bytesRead, _ticks;

    /// <summary>Starts listening.</summary>
    public WireStatistics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == WireMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (ReferenceEquals(instrument, WireMetrics.BytesWritten)) Interlocked.Add(ref _bytesWritten, value);
            else Interlocked.Add(ref _bytesRead, value);
        });
        _listener.SetMeasurementEventCallback<double>((_, value, _, _) => Interlocked.Add(ref _ticks, (long)(value * TimeSpan.TicksPerSecond)));
        _listener.Start();
    }

    /// <summary>Bytes written and read so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytesWritten) + Interlocked.Read(ref _bytesRead);

    /// <summary>Seconds spent serializing and deserializing so far.</summary>
    public double Seconds => (double)Interlocked.Read(ref _ticks) / TimeSpan.TicksPerSecond;

    /// <inheritdoc/>
    public void Dispose() => _listener.Dispose();
}
