using System.Diagnostics;

namespace Backprop.Benchmarks.Transport;

/// <summary>What one timed run measured on both sides.</summary>
internal readonly record struct RunResult(long Messages, long PayloadBytes, TimeSpan Wall, TimeSpan SenderCpu, TimeSpan ReceiverCpu)
{
    private double Megabytes => PayloadBytes / 1e6;
    public double SenderMsPerMB => SenderCpu.TotalMilliseconds / Megabytes;
    public double ReceiverMsPerMB => ReceiverCpu.TotalMilliseconds / Megabytes;
    public double MBPerSecond => Megabytes / Wall.TotalSeconds;
}

/// <summary>
/// The sender's end of a session: tensors of one size from a float[] it owns, at most
/// <paramref name="window"/> messages unacknowledged (the receiver acks each message; the sender waits for
/// the oldest ack once <paramref name="window"/> are out).
/// The link stays the caller's; messages are numbered from <paramref name="firstSequence"/>.
/// </summary>
internal sealed class Sender(ISenderLink link, int floats, int window, long firstSequence = 0) : IDisposable
{
    private readonly byte[] _header = new byte[Header.Size];
    private readonly FloatBytes _payload = new(Filled(floats));
    private long _sequence = firstSequence;

    /// <summary>The number the next message gets.</summary>
    public long NextSequence => _sequence;

    /// <summary>The tensor it sends (its first float is overwritten with the sequence number of each message).</summary>
    public float[] Tensor => _payload.Array;

    public int PayloadBytes => floats * sizeof(float);

    /// <summary>Sends <paramref name="count"/> tensors and waits for every ack.</summary>
    /// <paramref name="sending"/> sees each tensor before it goes, its first float already stamped, and may change the others.
    public async ValueTask SendAsync(long count, Action<long, Span<float>>? sending = null)
    {
        var inFlight = 0;
        var oldest = _sequence;
        for (long i = 0; i < count; i++)
        {
            var sequence = _sequence++;
            if (floats > 0) Tensor[0] = Stamp(sequence);
            sending?.Invoke(sequence, Tensor.AsSpan(0, floats));
            new Header(MessageKind.Data, sequence, PayloadBytes).Write(_header);
            await link.SendAsync(_header, _payload.Memory[..PayloadBytes]).ConfigureAwait(false);
            if (++inFlight == window)
            {
                await ExpectAckAsync(oldest++).ConfigureAwait(false);
                inFlight--;
            }
        }
        for (; inFlight > 0; inFlight--) await ExpectAckAsync(oldest++).ConfigureAwait(false);
    }

    /// <summary>The receiver's process CPU time now (every message before it acknowledged).</summary>
    public async ValueTask<TimeSpan> ReceiverCpuAsync() => TimeSpan.FromTicks((await ControlAsync(MessageKind.Mark).ConfigureAwait(false)).Value);

    /// <summary>Ends the session: the receiver acks and stops.</summary>
    public async ValueTask EndAsync() => await ControlAsync(MessageKind.End).ConfigureAwait(false);

    /// <summary>One timed run of <paramref name="count"/> messages: wall time and both sides' process CPU time.</summary>
    public async ValueTask<RunResult> TimeAsync(long count)
    {
        var receiver0 = await ReceiverCpuAsync().ConfigureAwait(false);
        var cpu0 = ProcessCpu.Now;
        var start = Stopwatch.GetTimestamp();
        await SendAsync(count).ConfigureAwait(false);
        var wall = Stopwatch.GetElapsedTime(start);
        var cpu = ProcessCpu.Now - cpu0;
        var receiver = await ReceiverCpuAsync().ConfigureAwait(false) - receiver0;
        return new RunResult(count, count * PayloadBytes, wall, cpu, receiver);
    }

    private async ValueTask<Ack> ControlAsync(MessageKind kind)
    {
        var sequence = _sequence++;
        new Header(kind, sequence, 0).Write(_header);
        await link.SendAsync(_header, ReadOnlyMemory<byte>.Empty).ConfigureAwait(false);
        return await ExpectAckAsync(sequence).ConfigureAwait(false);
    }

    private async ValueTask<Ack> ExpectAckAsync(long sequence)
    {
        var ack = await link.ReceiveAckAsync().ConfigureAwait(false);
        if (ack.Sequence != sequence) throw new InvalidDataException($"ack for message {ack.Sequence}, expected {sequence}");
        return ack;
    }

    /// <summary>The sequence number as the bits of the first float, which the receiver checks.</summary>
    public static float Stamp(long sequence) => BitConverter.Int32BitsToSingle((int)sequence);

    public void Dispose() => ((IDisposable)_payload).Dispose();

    private static float[] Filled(int floats)
    {
        var tensor = new float[floats];
        var random = new Random(floats);
        for (var i = 0; i < tensor.Length; i++) tensor[i] = (float)(random.NextDouble() * 2 - 1);
        return tensor;
    }
}

/// <summary>The receiver's end of a session: lands every payload in one pooled float buffer and acks it.</summary>
internal static class Receiver
{
    /// <summary>
    /// Serves messages until the sender ends the session. <paramref name="received"/> sees each payload
    /// where it landed (the tests check the bytes there).
    /// </summary>
    public static async ValueTask<long> ServeAsync(IReceiverLink link, Action<long, ReadOnlySpan<float>>? received = null)
    {
        using var buffer = new LandingBuffer();
        long messages = 0;
        while (true)
        {
            var header = await link.ReceiveAsync(buffer).ConfigureAwait(false);
            switch (header.Kind)
            {
                case MessageKind.Data:
                    var floats = buffer.Floats(header.PayloadBytes / sizeof(float));
                    if (floats.Length > 0 && BitConverter.SingleToInt32Bits(floats[0]) != (int)header.Sequence)
                        throw new InvalidDataException($"message {header.Sequence}: its payload does not start with its sequence number");
                    received?.Invoke(header.Sequence, floats);
                    messages++;
                    await link.SendAckAsync(new Ack(header.Sequence, 0)).ConfigureAwait(false);
                    break;
                case MessageKind.Mark:
                    await link.SendAckAsync(new Ack(header.Sequence, ProcessCpu.Now.Ticks)).ConfigureAwait(false);
                    break;
                default:
                    await link.SendAckAsync(new Ack(header.Sequence, 0)).ConfigureAwait(false);
                    return messages;
            }
        }
    }
}
