using System.Buffers.Binary;
using Backprop.Channel;

namespace Backprop.Runtime.Tests.Channel;

public sealed class TensorFrameTests
{
    private static readonly FrameHeader Sample = new(
        FrameKind.NodeSum, Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), Step: 0x0102030405060708, Version: -9_000_000_000L,
        NodeStart: 17, NodeSize: 4, SampleCount: 256, CorrectCount: 201, LossSum: 123.456789e-3, ComputeSeconds: 0.75, Count: 5, Segment: 3, Round: 0xfedc);

    private static readonly float[] Values = [1f, -0f, float.NaN, float.Epsilon, -3.4e38f];

    private static (byte[] Header, byte[] Payload) Written(FrameHeader header, float[] values)
    {
        var payload = FrameHeader.Bytes(values).ToArray();
        var bytes = new byte[FrameHeader.Size];
        header.Write(bytes, payload);
        return (bytes, payload);
    }

    [Fact]
    public void WriteThenRead_GivesBackEveryField()
    {
        var (header, payload) = Written(Sample, Values);
        var read = FrameHeader.TryRead(header, out var problem);
        Assert.Null(problem);
        Assert.Equal(Sample, read);
        Assert.True(FrameHeader.ChecksumMatches(header, payload));
    }

    [Theory]
    [InlineData(FrameKind.Hello)]
    [InlineData(FrameKind.Weights)]
    [InlineData(FrameKind.NodeSum)]
    public void WriteThenRead_EveryKindAndExtremeValues(FrameKind kind)
    {
        var header = new FrameHeader(kind, Guid.NewGuid(), long.MaxValue, long.MinValue, int.MinValue, int.MaxValue, -1, int.MinValue,
            double.NegativeInfinity, double.Epsilon, Count: 0, Segment: int.MinValue, Round: ushort.MaxValue);
        var (bytes, _) = Written(header, []);
        Assert.Equal(header, FrameHeader.TryRead(bytes, out _));
        Assert.True(FrameHeader.ChecksumMatches(bytes, []));
    }

    [Fact]
    public void Write_LaysTheFieldsOutAsDocumented()
    {
        var (h, payload) = Written(Sample, Values);
        Assert.Equal("BPT1"u8.ToArray(), h[..4]);
        Assert.Equal((byte)FrameKind.NodeSum, h[4]);
        Assert.Equal(0, h[5]);
        Assert.Equal(0xfedc, BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(6)));
        Assert.Equal(Sample.Run.ToByteArray(), h[8..24]);
        Assert.Equal(Sample.Step, BinaryPrimitives.ReadInt64LittleEndian(h.AsSpan(24)));
        Assert.Equal(Sample.Version, BinaryPrimitives.ReadInt64LittleEndian(h.AsSpan(32)));
        Assert.Equal(17, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(40)));
        Assert.Equal(4, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(44)));
        Assert.Equal(256, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(48)));
        Assert.Equal(201, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(52)));
        Assert.Equal(Sample.LossSum, BinaryPrimitives.ReadDoubleLittleEndian(h.AsSpan(56)));
        Assert.Equal(0.75, BinaryPrimitives.ReadDoubleLittleEndian(h.AsSpan(64)));
        Assert.Equal(5, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(72)));
        Assert.Equal(3, BinaryPrimitives.ReadInt32LittleEndian(h.AsSpan(76)));
        var hash = new System.IO.Hashing.XxHash3();
        hash.Append(h.AsSpan(0, 80));
        hash.Append(payload);
        Assert.Equal(hash.GetCurrentHashAsUInt64(), BinaryPrimitives.ReadUInt64LittleEndian(h.AsSpan(80)));
        Assert.Equal(20, Sample.PayloadBytes);
    }

    [Fact]
    public void Write_OverwritesWhateverTheBufferHeld()
    {
        var dirty = Enumerable.Repeat((byte)0xAB, FrameHeader.Size + 4).ToArray();
        Sample.Write(dirty, FrameHeader.Bytes(Values));
        var (clean, _) = Written(Sample, Values);
        Assert.Equal(clean, dirty[..FrameHeader.Size]);
        Assert.Equal(0xAB, dirty[FrameHeader.Size]); // nothing past the header
    }

    [Fact]
    public void Checksum_AnyChangedHeaderByte_IsDetected()
    {
        var (header, payload) = Written(Sample, Values);
        for (var i = 0; i < FrameHeader.Size; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var changed = (byte[])header.Clone();
                changed[i] ^= (byte)(1 << bit);
                Assert.False(FrameHeader.ChecksumMatches(changed, payload), $"header byte {i}, bit {bit}");
            }
        }
    }

    [Fact]
    public void Checksum_AnyChangedPayloadByte_IsDetected()
    {
        var (header, payload) = Written(Sample, Values);
        for (var i = 0; i < payload.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var changed = (byte[])payload.Clone();
                changed[i] ^= (byte)(1 << bit);
                Assert.False(FrameHeader.ChecksumMatches(header, changed), $"payload byte {i}, bit {bit}");
            }
        }
        Assert.False(FrameHeader.ChecksumMatches(header, payload.AsSpan(0, payload.Length - 1)));   // a byte missing
        Assert.False(FrameHeader.ChecksumMatches(header, [.. payload, 0])); // a byte more
    }

    [Fact]
    public void Checksum_HelloPayload_IsCovered()
    {
        var hello = FrameHeader.HelloPayload("10.1.2.3:4567");
        Assert.Equal("10.1.2.3:4567"u8.ToArray(), hello);
        var header = new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: hello.Length);
        Assert.Equal(hello.Length, header.PayloadBytes);
        var bytes = new byte[FrameHeader.Size];
        header.Write(bytes, hello);
        Assert.True(FrameHeader.ChecksumMatches(bytes, hello));
        Assert.False(FrameHeader.ChecksumMatches(bytes, FrameHeader.HelloPayload("10.1.2.3:4568")));
    }

    [Fact]
    public void TryRead_BadMagic_IsRefused()
    {
        var (header, _) = Written(Sample, Values);
        header[3] = (byte)'2'; // "BPT2"
        Assert.Null(FrameHeader.TryRead(header, out var problem));
        Assert.Contains("magic 0x32545042", problem);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(255)]
    public void TryRead_UnknownKind_IsRefused(byte kind)
    {
        var (header, _) = Written(Sample, Values);
        header[4] = kind;
        Assert.Null(FrameHeader.TryRead(header, out var problem));
        Assert.Equal($"unknown frame kind {kind}", problem);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void TryRead_NegativeCount_IsRefused(int count)
    {
        var (header, _) = Written(Sample, Values);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(72), count);
        Assert.Null(FrameHeader.TryRead(header, out var problem));
        Assert.Contains($"negative payload length {count}", problem);
    }

    [Fact]
    public void TryRead_ShortBuffer_IsRefused()
    {
        var (header, _) = Written(Sample, Values);
        Assert.Null(FrameHeader.TryRead(header.AsSpan(0, FrameHeader.Size - 1), out var problem));
        Assert.Contains("87 came", problem);
    }

    [Fact]
    public void TryRead_DoesNotCheckTheChecksum()
    {
        var (header, payload) = Written(Sample, Values);
        header[24] ^= 1; // step changed on the way
        Assert.Equal(Sample with { Step = Sample.Step ^ 1 }, FrameHeader.TryRead(header, out _));
        Assert.False(FrameHeader.ChecksumMatches(header, payload));
    }

    [Fact]
    public void Write_BufferTooSmall_Throws()
    {
        Assert.Throws<ArgumentException>(() => Sample.Write(new byte[FrameHeader.Size - 1], FrameHeader.Bytes(Values)));
    }
}
