using System.Collections.Immutable;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Protocol;

namespace Backprop.Runtime.Tests.Protocol;

public sealed class ProtocolSerializerTests : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer-tests", ProtocolConfig.Serialization);

    public void Dispose() => _system.Dispose();

    public static TheoryData<object> TensorMessages() =>
    [
        new SetupRun("run", ImmutableArray.Create(4, 5, 3), Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, 16, 7, 40, "abc123",
            ScalingKind.Standard, FloatTensor.CopyOf([1f, 2f, 3f, 4f]), FloatTensor.CopyOf([0.5f, 0.25f, 1f, 2f]), HalfPrecisionGradients: true),
        new WeightsUpdate("run", 12, FloatTensor.CopyOf([1f, -2.5f, float.Epsilon, 3e38f])),
        new GradientComputed("run", 3, 3, 4, 2, 32, 12.5, 30, FloatTensor.CopyOf([0.1f, 0.2f]), 0.25),
        new GradientComputed("run", 0, 0, 0, 1, 0, 0, 0, FloatTensor.CopyOf([])),
    ];

    public static TheoryData<object> ControlMessages() =>
    [
        RegisterWorker.Instance, new SetupAccepted("run"), new SetupRefused("run", "other data"),
        new ComputeGradient("run", 3, 3, 1, 64, 32, 4, 2), new VersionMismatch("run", 3, 4, 2, 3, 2), new RunFinished("run"),
        PauseTraining.Instance, ResumeTraining.Instance,
    ];

    [Theory]
    [MemberData(nameof(TensorMessages))]
    public void TensorMessage_RoundTripsThroughTheProtocolSerializer(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<ProtocolSerializer>(serializer);
        var copy = RoundTrip(message);
        Assert.Equal(Describe(message), Describe(copy));
    }

    [Theory]
    [MemberData(nameof(ControlMessages))]
    public void ControlMessage_RoundTripsThroughHyperion(object message)
    {
        Assert.IsType<ControlMessageSerializer>(_system.Serialization.FindSerializerFor(message));
        var copy = RoundTrip(message);
        Assert.Equal(message.GetType(), copy.GetType());
        Assert.Equal(Describe(message), Describe(copy));
    }

    [Fact]
    public void ControlSerializer_TypeNotOnTheAllowList_IsRefused()
    {
        var serializer = new ControlMessageSerializer((ExtendedActorSystem)_system);
        Assert.ThrowsAny<Exception>(() => serializer.ToBinary(new NotAllowed { Text = "x" }));
    }

    private sealed class NotAllowed
    {
        public string? Text { get; set; }
    }

    [Fact]
    public void WeightsUpdate_SameObject_IsSerializedOnce()
    {
        var serializer = (ProtocolSerializer)_system.Serialization.FindSerializerForType(typeof(WeightsUpdate));
        var update = new WeightsUpdate("run", 1, FloatTensor.CopyOf(new float[1000]));
        Assert.Same(serializer.ToBinary(update), serializer.ToBinary(update));
        Assert.NotSame(serializer.ToBinary(update), serializer.ToBinary(update with { Version = 2 }));
    }

    [Fact]
    public void Gradient_OfOneMillionFloats_TakesFourBytesEachPlusAHeader()
    {
        var serializer = (ProtocolSerializer)_system.Serialization.FindSerializerForType(typeof(GradientComputed));
        var bytes = serializer.ToBinary(new GradientComputed("0123456789abcdef0123456789abcdef", 1, 1, 0, 1, 1, 0, 0, FloatTensor.CopyOf(new float[1_000_000])));
        Assert.Equal(4_000_000 + 4 + 1 + 36 + 8 + 8 + 12 + 8 + 4 + 8, bytes.Length);
    }

    [Fact]
    public void Gradient_InHalfPrecision_TakesTwoBytesEachAndRoundTripsExactly()
    {
        var serializer = (ProtocolSerializer)_system.Serialization.FindSerializerForType(typeof(GradientComputed));
        var values = Enumerable.Range(0, 1000).Select(i => (float)Math.Sin(i) * 100).ToArray();
        var half = FloatTensor.RoundedToHalf(values);
        Assert.True(half.IsHalfPrecision);
        var message = new GradientComputed("run", 1, 1, 0, 1, 1, 0, 0, half);
        var bytes = serializer.ToBinary(message);
        Assert.Equal(2 * 1000 + 4 + 1 + 7 + 8 + 8 + 12 + 8 + 4 + 8, bytes.Length);
        var copy = (GradientComputed)serializer.FromBinary(bytes, "G");
        Assert.Equal(half.Span.ToArray(), copy.Sum.Span.ToArray());
        Assert.True(copy.Sum.IsHalfPrecision);
        // Rounding to binary16 keeps about 3 significant digits.
        for (var i = 0; i < values.Length; i++) Assert.True(Math.Abs(values[i] - half.Span[i]) <= Math.Abs(values[i]) / 1024 + 1e-7, $"{values[i]} vs {half.Span[i]}");
    }

    /// <summary>Floats from every part of the range (a bit pattern every 65,521), kept where binary16 reaches, with ±∞ and NaN.</summary>
    private static float[] HalfRangeValues()
    {
        var values = new List<float> { 0f, -0f, 65504f, -65504f, 65519.99f, float.Epsilon, 5.96e-8f, 2.98e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN };
        for (long bits = 0; bits <= uint.MaxValue; bits += 65521)
        {
            var v = BitConverter.Int32BitsToSingle((int)bits);
            if (!float.IsFinite(v) || Math.Abs(v) < 65520f) values.Add(v);
        }
        return [.. values];
    }

    [Fact]
    public void RoundedToHalf_EveryKindOfValue_IsTheCastBitForBit()
    {
        var values = HalfRangeValues();
        Assert.NotEqual(0, values.Length % 2048); // a partial last block as well as whole ones
        var rounded = FloatTensor.RoundedToHalf(values);
        Assert.True(rounded.IsHalfPrecision);
        for (var i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits((float)(Half)values[i]), BitConverter.SingleToInt32Bits(rounded.Span[i]));
    }

    [Fact]
    public void HalfTensor_OnTheWire_IsTheCastsBinary16AndReadsBackExactly()
    {
        var serializer = (ProtocolSerializer)_system.Serialization.FindSerializerForType(typeof(GradientComputed));
        var half = FloatTensor.RoundedToHalf(HalfRangeValues());
        var bytes = serializer.ToBinary(new GradientComputed("run", 1, 1, 0, 1, 1, 0, 0, half));
        var copy = (GradientComputed)serializer.FromBinary(bytes, "G");
        // The tensor's 2-byte values sit at the end of the message.
        var wire = bytes.AsSpan(bytes.Length - 2 * half.Length);
        for (var i = 0; i < half.Length; i++)
        {
            Assert.Equal(BitConverter.HalfToInt16Bits((Half)half.Span[i]), BitConverter.ToInt16(wire[(2 * i)..]));
            Assert.Equal(BitConverter.SingleToInt32Bits(half.Span[i]), BitConverter.SingleToInt32Bits(copy.Sum.Span[i]));
        }
    }

    [Fact]
    public void RoundedToHalf_ValueBeyondHalfRange_KeepsFullPrecision()
    {
        var tensor = FloatTensor.RoundedToHalf([1.5f, 70000f]);
        Assert.False(tensor.IsHalfPrecision);
        Assert.Equal([1.5f, 70000f], tensor.Span.ToArray());
    }

    [Fact]
    public void FromBinary_Truncated_ThrowsSerializationException()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var bytes = serializer.ToBinary(new GradientComputed("run", 3, 3, 4, 2, 32, 12.5, 30, FloatTensor.CopyOf([0.1f, 0.2f, 0.3f])));
        for (var length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes[..length], "G"));
            Assert.Contains("'G'", e.Message);
        }
    }

    [Fact]
    public void FromBinary_UnknownManifest_ThrowsSerializationException()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 2, 3], "Z"));
        Assert.Contains("unknown protocol manifest 'Z'", e.Message);
    }

    [Fact]
    public void FromBinary_WrongTensorLength_ThrowsSerializationException()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var bytes = serializer.ToBinary(new WeightsUpdate("r", 1, FloatTensor.CopyOf([1f, 2f])));
        bytes[1 + 4 + 8] = 200; // the tensor's count claims 200 floats
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "W"));
        var longer = serializer.ToBinary(new WeightsUpdate("r", 1, FloatTensor.CopyOf([1f, 2f])));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([.. longer, 0, 0, 0, 0], "W"));
    }

    [Fact]
    public void FromBinary_Garbage_ThrowsSerializationExceptionOnly()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var random = new Random(5);
        foreach (var manifest in new[] { "S", "W", "G" })
        {
            for (var i = 0; i < 300; i++)
            {
                var bytes = new byte[random.Next(0, 80)];
                random.NextBytes(bytes);
                try
                {
                    serializer.FromBinary(bytes, manifest);
                }
                catch (SerializationException)
                {
                }
            }
        }
    }

    [Fact]
    public void FromBinary_SetupWithInvalidActivationCode_IsRejected()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var setup = (SetupRun)((IEnumerable<object[]>)TensorMessages()).First()[0];
        var bytes = serializer.ToBinary(setup);
        var offset = 4 + 3 + 4 + 3 * 4; // run id, layer count, three sizes
        bytes[offset] = 99;
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "S"));
        Assert.Contains("not a valid Activation", e.Message);
    }

    private object RoundTrip(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        return _system.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
    }

    private static string Describe(object message) => message switch
    {
        SetupRun s => $"{s with { LayerSizes = [], ScalingShift = null!, ScalingScale = null! }} {string.Join(",", s.LayerSizes)} {string.Join(",", s.ScalingShift.Span.ToArray())} {string.Join(",", s.ScalingScale.Span.ToArray())}",
        WeightsUpdate w => $"{w with { Parameters = null! }} {string.Join(",", w.Parameters.Span.ToArray())}",
        GradientComputed g => $"{g with { Sum = null! }} {string.Join(",", g.Sum.Span.ToArray())}",
        RegisterWorker or PauseTraining or ResumeTraining => message.GetType().Name,
        _ => message.ToString()!,
    };
}
