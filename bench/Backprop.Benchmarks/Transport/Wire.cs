using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Backprop.Benchmarks.Transport;

/// <summary>What a message is: a tensor, a request for the receiver's CPU time, or the end of the session.</summary>
internal enum MessageKind : uint
{
    /// <summary>A float32 tensor follows the header.</summary>
    Data = 1,
    /// <summary>No payload: the receiver answers with its process CPU time (ticks) in the ack.</summary>
    Mark = 2,
    /// <summary>No payload: the receiver acks and stops.</summary>
    End = 3,
}

/// <summary>
/// The 64-byte header in front of every message, little-endian: magic "BPTC" (u32), kind (u32),
/// sequence (u64), payload bytes (u64), element type (u32, 1 = float32), 36 bytes reserved (zero; the
/// frame checksum would go there).
/// </summary>
internal readonly record struct Header(MessageKind Kind, long Sequence, int PayloadBytes)
{
    public const int Size = 64;
    public const uint Magic = 0x43545042; // "BPTC"
    public const uint Float32 = 1;

    public void Write(Span<byte> destination)
    {
        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)Kind);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], PayloadBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], Float32);
    }

    public static Header Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
            throw new InvalidDataException("not a tensor-channel header (bad magic)");
        var kind = (MessageKind)BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        var bytes = BinaryPrimitives.ReadInt64LittleEndian(source[16..]);
        if (kind is not (MessageKind.Data or MessageKind.Mark or MessageKind.End) || bytes < 0 || bytes > Array.MaxLength || bytes % sizeof(float) != 0)
            throw new InvalidDataException($"bad header: kind {(uint)kind}, {bytes} payload bytes");
        return new Header(kind, BinaryPrimitives.ReadInt64LittleEndian(source[8..]), (int)bytes);
    }
}

/// <summary>The receiver's 16-byte answer to every message: the sequence it answers (i64) and a value (i64; CPU ticks for a mark).</summary>
internal readonly record struct Ack(long Sequence, long Value)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Value);
    }

    public static Ack Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadInt64LittleEndian(source), BinaryPrimitives.ReadInt64LittleEndian(source[8..]));
}

/// <summary>
/// The receiver's landing buffer: a float[] rented from <see cref="ArrayPool{T}.Shared"/> once and reused
/// for every message (rented again, larger, only when a message does not fit), as a gradient buffer of
/// the application would be. Its bytes are exposed as a <see cref="Memory{T}"/> for the async APIs.
/// </summary>
internal sealed class LandingBuffer : IDisposable
{
    private FloatBytes? _bytes;

    /// <summary>The floats the last message landed in (valid until the next message).</summary>
    public ReadOnlySpan<float> Floats(int count) => _bytes!.Array.AsSpan(0, count);

    /// <summary>The first <paramref name="byteCount"/> bytes of the buffer, grown when it is too small.</summary>
    public Memory<byte> Bytes(int byteCount)
    {
        var floats = byteCount / sizeof(float);
        if (_bytes is null || _bytes.Array.Length < floats)
        {
            if (_bytes is not null) ArrayPool<float>.Shared.Return(_bytes.Array);
            _bytes = new FloatBytes(ArrayPool<float>.Shared.Rent(Math.Max(floats, 1)));
        }
        return _bytes.Memory[..byteCount];
    }

    public void Dispose()
    {
        if (_bytes is not null) ArrayPool<float>.Shared.Return(_bytes.Array);
        _bytes = null;
    }
}

/// <summary>
/// The bytes of a float[] as <see cref="Memory{T}"/> of bytes (<see cref="MemoryMarshal.AsBytes{T}(Span{T})"/>
/// only gives spans), so that the ValueTask socket and stream APIs read and write the floats in place.
/// </summary>
internal sealed class FloatBytes(float[] array) : MemoryManager<byte>
{
    public float[] Array { get; } = array;

    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(Array.AsSpan());

    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        var handle = GCHandle.Alloc(Array, GCHandleType.Pinned);
        var start = (byte*)handle.AddrOfPinnedObject() + elementIndex;
        return new MemoryHandle(start, handle, this);
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}

/// <summary>Process CPU time (user + system, all threads), from getrusage through <see cref="Environment.CpuUsage"/>.</summary>
internal static class ProcessCpu
{
    public static TimeSpan Now => Environment.CpuUsage.TotalTime;
}
