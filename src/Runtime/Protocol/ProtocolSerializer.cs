using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Backprop.Data;
using Backprop.Networks;

namespace Backprop.Protocol;

/// <summary>
/// The wire format of every message that carries tensors (<see cref="ITensorMessage"/>): a
/// one-letter manifest names the type, the payload is a few little-endian fields followed by the
/// tensors (an int32 count, an encoding byte — 0 float32, 1 float16 — then the raw little-endian
/// values). No reflection, no per-element boxing. Malformed input throws <see cref="SerializationException"/> naming what is
/// wrong; Akka drops that message and keeps the connection.
/// </summary>
public sealed class ProtocolSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer id (ids up to 100 are Akka's).</summary>
    public const int Id = 2701;

    private const string SetupManifest = "S", WeightsManifest = "W", GradientManifest = "G";
    private const byte SingleEncoding = 0, HalfEncoding = 1;

    // The last weights broadcast and its bytes: one broadcast object goes to every worker, so it
    // is serialized once, not once per worker.
    private (WeightsUpdate Message, byte[] Bytes)? _lastWeights;
    private readonly Lock _lastWeightsLock = new();

    /// <summary>Created by Akka from configuration.</summary>
    public ProtocolSerializer(ExtendedActorSystem system) : base(system) { }

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override string Manifest(object o) => o switch
    {
        SetupRun => SetupManifest,
        WeightsUpdate => WeightsManifest,
        GradientComputed => GradientManifest,
        _ => throw new ArgumentException($"{o.GetType()} is not a tensor message", nameof(o)),
    };

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var bytes = Serialize(obj);
        WireMetrics.Seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        WireMetrics.BytesWritten.Add(bytes.Length);
        return bytes;
    }

    private byte[] Serialize(object obj)
    {
        switch (obj)
        {
            case WeightsUpdate w:
                lock (_lastWeightsLock)
                {
                    if (_lastWeights is { } last && ReferenceEquals(last.Message, w)) return last.Bytes;
                }
                var bytes = Write(w);
                lock (_lastWeightsLock) _lastWeights = (w, bytes);
                return bytes;
            case SetupRun s:
                return Write(s);
            case GradientComputed g:
                return Write(g);
            default:
                throw new ArgumentException($"{obj.GetType()} is not a tensor message", nameof(obj));
        }
    }

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, string manifest)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var message = Deserialize(bytes, manifest);
        WireMetrics.Seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        WireMetrics.BytesRead.Add(bytes.Length);
        return message;
    }

    private static object Deserialize(byte[] bytes, string manifest)
    {
        var reader = new WireReader(bytes, manifest);
        object message = manifest switch
        {
            SetupManifest => ReadSetup(ref reader),
            WeightsManifest => new WeightsUpdate(reader.String(), reader.Int64(), reader.Tensor()),
            GradientManifest => new GradientComputed(reader.String(), reader.Int64(), reader.Int64(), reader.Int32(), reader.Int32(),
                reader.Int32(), reader.Double(), reader.Int32(), ComputeSeconds: reader.Double(), Sum: reader.Tensor()),
            _ => throw new SerializationException($"unknown protocol manifest '{manifest}'"),
        };
        reader.End();
        return message;
    }

    private static byte[] Write(WeightsUpdate w)
    {
        var writer = new WireWriter(Size(w.RunId) + 8 + Size(w.Parameters));
        writer.String(w.RunId);
        writer.Int64(w.Version);
        writer.Tensor(w.Parameters);
        return writer.Done();
    }

    private static byte[] Write(GradientComputed g)
    {
        var writer = new WireWriter(Size(g.RunId) + 8 + 8 + 4 * 4 + 8 + 8 + Size(g.Sum));
        writer.String(g.RunId);
        writer.Int64(g.Step);
        writer.Int64(g.Version);
        writer.Int32(g.NodeStart);
        writer.Int32(g.NodeSize);
        writer.Int32(g.SampleCount);
        writer.Double(g.LossSum);
        writer.Int32(g.CorrectCount);
        writer.Double(g.ComputeSeconds);
        writer.Tensor(g.Sum);
        return writer.Done();
    }

    private static byte[] Write(SetupRun s)
    {
        var writer = new WireWriter(Size(s.RunId) + 4 + 4 * s.LayerSizes.Length + 3 + 4 * 3 + Size(s.DataHash) + 1 + Size(s.ScalingShift) + Size(s.ScalingScale) + 1);
        writer.String(s.RunId);
        writer.Int32(s.LayerSizes.Length);
        foreach (var n in s.LayerSizes) writer.Int32(n);
        writer.Byte((byte)s.Hidden);
        writer.Byte((byte)s.Output);
        writer.Byte((byte)s.Cost);
        writer.Int32(s.ChunkSize);
        writer.Int32(s.Seed);
        writer.Int32(s.TrainCount);
        writer.String(s.DataHash);
        writer.Byte((byte)s.Scaling);
        writer.Tensor(s.ScalingShift);
        writer.Tensor(s.ScalingScale);
        writer.Byte(s.HalfPrecisionGradients ? (byte)1 : (byte)0);
        return writer.Done();
    }

    private static SetupRun ReadSetup(ref WireReader reader)
    {
        var runId = reader.String();
        var count = reader.Int32();
        if (count is < 2 or > 1024) throw new SerializationException($"SetupRun: {count} layer sizes");
        var sizes = new int[count];
        for (var l = 0; l < count; l++) sizes[l] = reader.Int32();
        return new SetupRun(runId, ImmutableArray.Create(sizes),
            reader.Enum<Activation>(), reader.Enum<Activation>(), reader.Enum<Cost>(),
            reader.Int32(), reader.Int32(), reader.Int32(), reader.String(), reader.Enum<ScalingKind>(),
            reader.Tensor(), reader.Tensor(), reader.Byte() switch
            {
                0 => false,
                1 => true,
                var b => throw new SerializationException($"SetupRun: half-precision flag {b}"),
            });
    }

    private static int Size(string s) => 4 + Encoding.UTF8.GetByteCount(s);

    private static int Size(FloatTensor t) => 4 + 1 + (t.IsHalfPrecision ? 2 : 4) * t.Length;

    /// <summary>Appends little-endian fields to a buffer of known size.</summary>
    private ref struct WireWriter(int size)
    {
        private readonly byte[] _bytes = new byte[size];
        private int _position;

        public void Byte(byte value) => _bytes[_position++] = value;

        public void Int32(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_bytes.AsSpan(_position), value);
            _position += 4;
        }

        public void Int64(long value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_bytes.AsSpan(_position), value);
            _position += 8;
        }

        public void Double(double value)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(_bytes.AsSpan(_position), value);
            _position += 8;
        }

        public void String(string value)
        {
            var length = Encoding.UTF8.GetBytes(value, _bytes.AsSpan(_position + 4));
            Int32(length);
            _position += length;
        }

        public void Tensor(FloatTensor tensor)
        {
            Int32(tensor.Length);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian machines are not supported");
            if (tensor.IsHalfPrecision)
            {
                Byte(HalfEncoding);
                var halves = MemoryMarshal.Cast<byte, Half>(_bytes.AsSpan(_position, 2 * tensor.Length));
                TensorPrimitives.ConvertToHalf(tensor.Span, halves);
                _position += 2 * tensor.Length;
                return;
            }
            Byte(SingleEncoding);
            MemoryMarshal.AsBytes(tensor.Span).CopyTo(_bytes.AsSpan(_position));
            _position += 4 * tensor.Length;
        }

        public readonly byte[] Done() =>
            _position == _bytes.Length ? _bytes : throw new InvalidOperationException($"wrote {_position} of {_bytes.Length} bytes");
    }

    /// <summary>Reads little-endian fields; anything short or out of range is a <see cref="SerializationException"/>.</summary>
    private ref struct WireReader(byte[] bytes, string manifest)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count < 0 || count > _bytes.Length - _position)
                throw new SerializationException($"protocol message '{manifest}' is truncated: needs {count} more bytes at offset {_position} of {_bytes.Length}");
            var span = _bytes.Slice(_position, count);
            _position += count;
            return span;
        }

        public byte Byte() => Take(1)[0];
        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        public double Double() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

        public T Enum<T>() where T : struct, Enum
        {
            var code = Byte();
            var value = (T)(object)(int)code;
            return System.Enum.IsDefined(value) ? value : throw new SerializationException($"protocol message '{manifest}': {code} is not a valid {typeof(T).Name}");
        }

        public string String()
        {
            var length = Int32();
            if (length > 4096) throw new SerializationException($"protocol message '{manifest}': a string of {length} bytes");
            return Encoding.UTF8.GetString(Take(length));
        }

        public FloatTensor Tensor()
        {
            var count = Int32();
            var encoding = Byte();
            if (encoding is not (SingleEncoding or HalfEncoding))
                throw new SerializationException($"protocol message '{manifest}': unknown tensor encoding {encoding}");
            var width = encoding == HalfEncoding ? 2 : 4;
            if (count < 0 || count > (_bytes.Length - _position) / width)
                throw new SerializationException($"protocol message '{manifest}' is truncated: a tensor of {count} values does not fit in the {_bytes.Length - _position} bytes left");
            if (encoding == SingleEncoding) return FloatTensor.TakeOwnership(MemoryMarshal.Cast<byte, float>(Take(4 * count)).ToArray());
            var halves = MemoryMarshal.Cast<byte, Half>(Take(2 * count));
            var values = new float[count];
            TensorPrimitives.ConvertToSingle(halves, values);
            return FloatTensor.TakeOwnership(values, halfPrecision: true);
        }

        public readonly void End()
        {
            if (_position != _bytes.Length)
                throw new SerializationException($"protocol message '{manifest}' has {_bytes.Length - _position} unexpected bytes at its end");
        }
    }
}
