using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Backprop.Channel;

/// <summary>What a frame of the tensor channel carries.</summary>
public enum FrameKind : byte
{
    /// <summary>The first frame on every connection: the sender's endpoint (UTF-8), so the receiver knows who it is.</summary>
    Hello = 1,
    /// <summary>Coordinator → worker: the weights of one version.</summary>
    Weights = 2,
    /// <summary>Worker → coordinator (star): the gradient sum of one chunk-tree node, with its loss, count and correct count.</summary>
    NodeSum = 3,
    /// <summary>Worker → a segment's owner (all-reduce): one segment of one node's gradient sum.</summary>
    Part = 4,
    /// <summary>A segment's owner → every worker (all-reduce): the segment of the step's summed gradient.</summary>
    Sum = 5,
    /// <summary>A worker (or the coordinator) → a worker that joins: the weights of a version, then the optimizer's state arrays (<see cref="FrameHeader.Segment"/> of them).</summary>
    State = 6,
}

/// <summary>
/// The fixed 88-byte header of a frame, little-endian, followed by <see cref="PayloadBytes"/> bytes
/// of payload (raw little-endian float32 for tensors). The checksum is XxHash3 over the header's
/// first 80 bytes and the payload, so a frame whose header or payload changed on the way is refused.
/// </summary>
/// <remarks>
/// <code>
///  0 u32 magic "BPT1"     4 u8 kind   5 u8 0   6 u16 round
///  8 Guid run (16)        24 i64 step            32 i64 version
/// 40 i32 node start       44 i32 node size       48 i32 sample count   52 i32 correct count
/// 56 f64 loss sum         64 f64 compute seconds
/// 72 i32 payload values   76 i32 segment (0)     80 u64 XxHash3(header[0..80) ‖ payload)
/// </code>
/// </remarks>
public readonly record struct FrameHeader(
    FrameKind Kind, Guid Run, long Step, long Version, int NodeStart = 0, int NodeSize = 0,
    int SampleCount = 0, int CorrectCount = 0, double LossSum = 0, double ComputeSeconds = 0, int Count = 0, int Segment = 0, ushort Round = 0)
{
    /// <summary>Bytes of a header.</summary>
    public const int Size = 88;
    /// <summary>"BPT1", little-endian.</summary>
    public const uint Magic = 0x31545042;
    private const int ChecksumOffset = 80;

    /// <summary>The payload's length in bytes: 4 a value for tensors, the UTF-8 length for <see cref="FrameKind.Hello"/>.</summary>
    public int PayloadBytes => Kind == FrameKind.Hello ? Count : checked(Count * sizeof(float));

    /// <summary>Writes the header, with the checksum of it and <paramref name="payload"/>, into <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination, ReadOnlySpan<byte> payload)
    {
        if (destination.Length < Size) throw new ArgumentException($"a header takes {Size} bytes", nameof(destination));
        var d = destination[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d, Magic);
        d[4] = (byte)Kind;
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], Round);
        Run.TryWriteBytes(d.Slice(8, 16));
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], Step);
        BinaryPrimitives.WriteInt64LittleEndian(d[32..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(d[40..], NodeStart);
        BinaryPrimitives.WriteInt32LittleEndian(d[44..], NodeSize);
        BinaryPrimitives.WriteInt32LittleEndian(d[48..], SampleCount);
        BinaryPrimitives.WriteInt32LittleEndian(d[52..], CorrectCount);
        BinaryPrimitives.WriteDoubleLittleEndian(d[56..], LossSum);
        BinaryPrimitives.WriteDoubleLittleEndian(d[64..], ComputeSeconds);
        BinaryPrimitives.WriteInt32LittleEndian(d[72..], Count);
        BinaryPrimitives.WriteInt32LittleEndian(d[76..], Segment);
        BinaryPrimitives.WriteUInt64LittleEndian(d[ChecksumOffset..], Checksum(d, payload));
    }

    /// <summary>
    /// Reads a header (without checking the checksum, which needs the payload): null and the reason
    /// when the bytes are not a header this version of the channel understands.
    /// </summary>
    public static FrameHeader? TryRead(ReadOnlySpan<byte> source, out string? problem)
    {
        problem = null;
        if (source.Length < Size) { problem = $"a header takes {Size} bytes, {source.Length} came"; return null; }
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (magic != Magic) { problem = $"not a tensor-channel frame (magic 0x{magic:x8})"; return null; }
        var kind = (FrameKind)source[4];
        if (!Enum.IsDefined(kind)) { problem = $"unknown frame kind {source[4]}"; return null; }
        var count = BinaryPrimitives.ReadInt32LittleEndian(source[72..]);
        if (count < 0) { problem = $"a negative payload length {count}"; return null; }
        return new FrameHeader(kind, new Guid(source.Slice(8, 16)),
            BinaryPrimitives.ReadInt64LittleEndian(source[24..]), BinaryPrimitives.ReadInt64LittleEndian(source[32..]),
            BinaryPrimitives.ReadInt32LittleEndian(source[40..]), BinaryPrimitives.ReadInt32LittleEndian(source[44..]),
            BinaryPrimitives.ReadInt32LittleEndian(source[48..]), BinaryPrimitives.ReadInt32LittleEndian(source[52..]),
            BinaryPrimitives.ReadDoubleLittleEndian(source[56..]), BinaryPrimitives.ReadDoubleLittleEndian(source[64..]),
            count, BinaryPrimitives.ReadInt32LittleEndian(source[76..]), BinaryPrimitives.ReadUInt16LittleEndian(source[6..]));
    }

    /// <summary>Whether the checksum in <paramref name="header"/> (the bytes <see cref="TryRead"/> read) matches them and <paramref name="payload"/>.</summary>
    public static bool ChecksumMatches(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload) =>
        BinaryPrimitives.ReadUInt64LittleEndian(header[ChecksumOffset..]) == Checksum(header, payload);

    private static ulong Checksum(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        var hash = new XxHash3();
        hash.Append(header[..ChecksumOffset]);
        hash.Append(payload);
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>The bytes of a float payload.</summary>
    public static ReadOnlySpan<byte> Bytes(ReadOnlySpan<float> values) => MemoryMarshal.AsBytes(values);

    /// <summary>The Hello frame's payload: the sender's endpoint.</summary>
    public static byte[] HelloPayload(string endpoint) => Encoding.UTF8.GetBytes(endpoint);
}
