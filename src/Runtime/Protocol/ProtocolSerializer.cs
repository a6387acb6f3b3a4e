using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Protocol;

/// <summary>
/// The wire format of the one control message that carries tensors (<see cref="ITensorMessage"/>:
/// <see cref="SetupRun"/>, with the feature scaling), and of an <see cref="Address"/> (the id of the
/// roster's Identify, which would otherwise need a general-purpose serializer): a one-letter manifest names the type, the
/// payload is a few little-endian fields followed by the tensors (an int32 count, an encoding
/// byte — 0, float32 — then the raw little-endian values). Weights and gradients do not travel
/// through Akka at all: they take the tensor channel (Backprop.Channel). No reflection, no per-element boxing. Malformed input throws <see cref="SerializationException"/> naming what is
/// wrong; Akka drops that message and keeps the connection.
/// </summary>
public sealed class ProtocolSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer id (ids up to 100 are Akka's).</summary>
    public const int Id = 2701;

    private const string SetupManifest = "S";
    private const string AddressManifest = "A";
    private const byte SingleEncoding = 0;

    /// <summary>Created by Akka from configuration.</summary>
    public ProtocolSerializer(ExtendedActorSystem system) : base(system) { }

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override string Manifest(object o) => o switch
    {
        SetupRun => SetupManifest,
        Address => AddressManifest,
        ILocalTensorMessage => throw Refused(o),
        _ => throw new ArgumentException($"{o.GetType()} is not a tensor message", nameof(o)),
    };

    private static ArgumentException Refused(object o) =>
        new($"{o.GetType().Name} carries a whole tensor: between processes it travels over the tensor channel, never through Akka", nameof(o));

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var bytes = obj switch
        {
            SetupRun setup => Write(setup),
            Address address => WriteAddress(address),
            ILocalTensorMessage => throw Refused(obj),
            _ => throw new ArgumentException($"{obj.GetType()} is not a tensor message", nameof(obj)),
        };
        WireMetrics.Seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        WireMetrics.BytesWritten.Add(bytes.Length);
        return bytes;
    }

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, string manifest)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var reader = new WireReader(bytes, manifest);
        object message = manifest switch
        {
            SetupManifest => ReadSetup(ref reader),
            AddressManifest => ReadAddress(ref reader),
            _ => throw new SerializationException($"unknown protocol manifest '{manifest}'"),
        };
        reader.End();
        WireMetrics.Seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        WireMetrics.BytesRead.Add(bytes.Length);
        return message;
    }

    /// <summary>A node's address, the id of the roster's <see cref="Identify"/> of a worker node (Akka has no serializer of its own for it).</summary>
    private static byte[] WriteAddress(Address address)
    {
        var text = address.ToString();
        var writer = new WireWriter(Size(text));
        writer.String(text);
        return writer.Done();
    }

    private static Address ReadAddress(ref WireReader reader)
    {
        var text = reader.String();
        try
        {
            return Address.Parse(text);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            throw new SerializationException($"not an actor system address: '{text}'", e);
        }
    }

    private static byte[] Write(SetupRun s)
    {
        var writer = new WireWriter(Size(s.RunId) + 4 + 4 * s.LayerSizes.Length + 3 + 4 * 3 + Size(s.DataHash) + 1 + Size(s.ScalingShift) + Size(s.ScalingScale) + Size(s.TensorEndpoint ?? "") + 1 + 1 + 1 + 6 * 4 + 4 + 4);
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
        writer.String(s.TensorEndpoint ?? "");
        writer.Byte((byte)s.Reduce);
        writer.Byte(s.Optimizer is null ? (byte)0 : (byte)1);
        var optimizer = s.Optimizer ?? new OptimizerSettings();
        writer.Byte((byte)optimizer.Kind);
        foreach (var value in new[] { optimizer.LearningRate, optimizer.Momentum, optimizer.Beta1, optimizer.Beta2, optimizer.Epsilon, optimizer.WeightDecay })
            writer.Single(value);
        writer.Int32(optimizer.WarmupSteps);
        writer.Int32(s.StateCheckEvery);
        return writer.Done();
    }

    private static SetupRun ReadSetup(ref WireReader reader)
    {
        var runId = reader.String();
        var count = reader.Int32();
        if (count is < 2 or > 1024) throw new SerializationException($"SetupRun: {count} layer sizes");
        var sizes = new int[count];
        for (var l = 0; l < count; l++) sizes[l] = reader.Int32();
        var setup = new SetupRun(runId, ImmutableArray.Create(sizes),
            reader.Enum<Activation>(), reader.Enum<Activation>(), reader.Enum<Cost>(),
            reader.Int32(), reader.Int32(), reader.Int32(), reader.String(), reader.Enum<ScalingKind>(),
            reader.Tensor(), reader.Tensor(), reader.String() is { Length: > 0 } endpoint ? endpoint : null, reader.Enum<ReduceMode>());
        var hasOptimizer = reader.Byte() switch
        {
            0 => false,
            1 => true,
            var b => throw new SerializationException($"SetupRun: optimizer flag {b}"),
        };
        var optimizer = new OptimizerSettings(reader.Enum<OptimizerKind>(), reader.Single(), reader.Single(), reader.Single(), reader.Single(), reader.Single(), reader.Single(), reader.Int32());
        return setup with { Optimizer = hasOptimizer ? optimizer : null, StateCheckEvery = reader.Int32() };
    }

    private static int Size(string s) => 4 + Encoding.UTF8.GetByteCount(s);

    private static int Size(FloatTensor t) => 4 + 1 + 4 * t.Length;

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

        public void Single(float value)
        {
            BinaryPrimitives.WriteSingleLittleEndian(_bytes.AsSpan(_position), value);
            _position += 4;
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
        public float Single() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

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
            if (encoding != SingleEncoding)
                throw new SerializationException($"protocol message '{manifest}': unknown tensor encoding {encoding}");
            if (count < 0 || count > (_bytes.Length - _position) / 4)
                throw new SerializationException($"protocol message '{manifest}' is truncated: a tensor of {count} values does not fit in the {_bytes.Length - _position} bytes left");
            return FloatTensor.TakeOwnership(MemoryMarshal.Cast<byte, float>(Take(4 * count)).ToArray());
        }

        public readonly void End()
        {
            if (_position != _bytes.Length)
                throw new SerializationException($"protocol message '{manifest}' has {_bytes.Length - _position} unexpected bytes at its end");
        }
    }
}
