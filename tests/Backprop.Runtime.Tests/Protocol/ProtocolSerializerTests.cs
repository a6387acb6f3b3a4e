using System.Collections.Immutable;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Runtime.Tests.Protocol;

public sealed class ProtocolSerializerTests : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer-tests", ProtocolConfig.Serialization);

    public void Dispose() => _system.Dispose();

    private static SetupRun Setup(string? tensorEndpoint) =>
        new("run", ImmutableArray.Create(4, 5, 3), Activation.ReLU, Activation.Softmax, Cost.CrossEntropy, 16, 7, 40, "abc123",
            ScalingKind.Standard, FloatTensor.CopyOf([1f, 2f, 3f, 4f]), FloatTensor.CopyOf([0.5f, 0.25f, float.Epsilon, 3e38f]), tensorEndpoint);

    public static TheoryData<object> TensorMessages() =>
    [
        Setup(null),
        Setup("h:1") with { Reduce = ReduceMode.AllReduce, StateCheckEvery = 25,
            Optimizer = new OptimizerSettings(OptimizerKind.Adam, 0.003f, 0.8f, 0.85f, 0.995f, 1e-7f, 1e-4f, 10) },
        Setup("10.0.0.7:25521"),
        Setup("wörker-host.example:1"),
    ];

    public static TheoryData<object> ControlMessages() =>
    [
        RegisterWorker.Instance, new SetupAccepted("run"), new SetupAccepted("run", "10.0.0.8:4000"), new SetupRefused("run", "other data"),
        new ComputeGradient("run", 3, 3, 1, 64, 32, 4, 2), new VersionMismatch("run", 3, 4, 2, 3, 2), new RunFinished("run"),
    ];

    /// <summary>Pausing and resuming a run are local messages of the coordinator's process: the network cannot deliver them.</summary>
    [Fact]
    public void PauseAndResume_AreNotOnTheWire()
    {
        Assert.DoesNotContain(ProtocolConfig.ControlTypes, t => t.Name is "PauseTraining" or "ResumeTraining");
        Assert.DoesNotContain(typeof(IControlMessage).Assembly.GetTypes(), t => t.Name is "PauseTraining" or "ResumeTraining");
    }

    /// <summary>The tensor messages of the protocol that never go through Akka between processes.</summary>
    public static TheoryData<object> ChannelMessages() =>
    [
        new WeightsUpdate("run", 12, FloatTensor.CopyOf([1.640625f, -2.515625f])),
        new GradientComputed("run", 3, 3, 4, 2, 32, 12.5, 30, FloatTensor.CopyOf([1.640625f, -2.515625f]), 0.25),
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

    /// <summary>The roster's Identify of a worker node carries the node's address; Akka has no serializer for it, so the protocol's carries it.</summary>
    [Fact]
    public void Address_RoundTripsThroughTheProtocolSerializer()
    {
        var address = new Address("akka.tcp", "backprop", "10.0.0.7", 4711);
        Assert.IsType<ProtocolSerializer>(_system.Serialization.FindSerializerFor(address));
        Assert.Equal(address, RoundTrip(address));
    }

    [Fact]
    public void SetupRun_TensorEndpoint_SurvivesTheRoundTripAndNullStaysNull()
    {
        Assert.Null(((SetupRun)RoundTrip(Setup(null))).TensorEndpoint);
        Assert.Equal("10.0.0.7:25521", ((SetupRun)RoundTrip(Setup("10.0.0.7:25521"))).TensorEndpoint);
        // An empty endpoint is the wire's null.
        Assert.Null(((SetupRun)RoundTrip(Setup(""))).TensorEndpoint);
    }

    [Fact]
    public void SetupRun_TensorEndpoint_TakesItsUtf8BytesAndALength()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var without = serializer.ToBinary(Setup(null));
        var with = serializer.ToBinary(Setup("h:1"));
        Assert.Equal(without.Length + 3, with.Length);
        Assert.Equal(Describe(Setup("h:1")), Describe(serializer.FromBinary(with, "S")));
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

    [Theory]
    [MemberData(nameof(ChannelMessages))]
    public void ProtocolSerializer_RefusesWeightsAndGradients(object message)
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        Assert.Throws<ArgumentException>(() => serializer.Manifest(message));
        Assert.Throws<ArgumentException>(() => serializer.ToBinary(message));
    }

    [Theory]
    [InlineData("W")]
    [InlineData("G")]
    public void ProtocolSerializer_FormerWeightsAndGradientManifests_AreUnknown(string manifest)
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 2, 3, 4], manifest));
        Assert.Contains($"unknown protocol manifest '{manifest}'", e.Message);
    }

    [Theory]
    [MemberData(nameof(ChannelMessages))]
    public void WeightsAndGradients_AreNotOnTheProtocolsOwnBindings(object message)
    {
        Assert.IsAssignableFrom<ILocalTensorMessage>(message);
        Assert.IsNotType<ITensorMessage>(message, exactMatch: false);
        Assert.IsNotType<IControlMessage>(message, exactMatch: false);
        Assert.DoesNotContain(message.GetType(), ProtocolConfig.ControlTypes);
        Assert.IsNotType<ControlMessageSerializer>(_system.Serialization.FindSerializerFor(message));
    }

    /// <summary>
    /// Akka's default binding "System.Object" = json would otherwise cover them: one told to a
    /// remote actor by mistake must fail at the sender, not travel as JSON without its values.
    /// </summary>
    [Theory]
    [MemberData(nameof(ChannelMessages))]
    public void WeightsAndGradients_AreBoundToTheProtocolSerializer_WhichRefusesThem(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<ProtocolSerializer>(serializer);
        var refusal = Assert.Throws<ArgumentException>(() => serializer.ToBinary(message));
        Assert.Contains("tensor channel", refusal.Message);
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
    public void Setup_TakesFourBytesAValuePlusItsFields()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var setup = Setup(null) with { ScalingShift = FloatTensor.CopyOf(new float[1000]), ScalingScale = FloatTensor.CopyOf(new float[1000]) };
        var bytes = serializer.ToBinary(setup);
        // run id, 3 sizes, 3 enum bytes, chunk/seed/count, hash, scaling byte, two tensors, empty endpoint,
        // reduce mode, optimizer flag and kind, 6 optimizer floats, warm-up, replica-check interval
        Assert.Equal((4 + 3) + (4 + 12) + 3 + 12 + (4 + 6) + 1 + 2 * (4 + 1 + 4000) + 4 + 3 + 24 + 4 + 4, bytes.Length);
    }

    [Fact]
    public void FromBinary_Truncated_ThrowsSerializationException()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var bytes = serializer.ToBinary(Setup("10.0.0.7:25521"));
        for (var length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes[..length], "S"));
            Assert.Contains("'S'", e.Message);
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
        var bytes = serializer.ToBinary(Setup(null));
        var offset = (4 + 3) + (4 + 12) + 3 + 12 + (4 + 6) + 1; // the shift tensor's count
        Assert.Equal(4, BitConverter.ToInt32(bytes, offset));
        bytes[offset] = 200; // claims 200 floats
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "S"));
        var longer = serializer.ToBinary(Setup(null));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([.. longer, 0, 0, 0, 0], "S"));
    }

    [Fact]
    public void FromBinary_UnknownTensorEncoding_ThrowsSerializationException()
    {
        var serializer = new ProtocolSerializer((ExtendedActorSystem)_system);
        var bytes = serializer.ToBinary(Setup(null));
        var offset = (4 + 3) + (4 + 12) + 3 + 12 + (4 + 6) + 1 + 4; // the shift tensor's encoding byte
        bytes[offset] = 1; // the former binary16 encoding
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "S"));
        Assert.Contains("unknown tensor encoding 1", e.Message);
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
        var bytes = serializer.ToBinary(Setup(null));
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
        SetupRun s => $"{s with { LayerSizes = [], ScalingShift = null!, ScalingScale = null! }} {string.Join(",", s.LayerSizes)} {Bits(s.ScalingShift)} {Bits(s.ScalingScale)}",
        RegisterWorker => message.GetType().Name,
        _ => message.ToString()!,
    };

    private static string Bits(FloatTensor t) => string.Join(",", t.Span.ToArray().Select(BitConverter.SingleToInt32Bits));
}

/// <summary>What <c>serialize-messages = on</c> does with the messages the channel carries between processes.</summary>
public sealed class SerializeMessagesSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config SpecConfig = ConfigurationFactory.ParseString("""
        akka.actor.serialize-messages = on
        """).WithFallback(ProtocolConfig.Serialization);

    public SerializeMessagesSpecs() : base(SpecConfig) { }

    [Fact]
    public void WeightsAndGradients_AreNotVerified_TheSameInstanceArrives()
    {
        // INoSerializationVerificationNeeded: verification skips them; a local tell hands over the reference.
        var weights = new WeightsUpdate("run", 1, FloatTensor.CopyOf([1f, 2f]));
        var gradient = new GradientComputed("run", 1, 1, 0, 1, 1, 0, 0, FloatTensor.CopyOf([3f]));
        TestActor.Tell(weights);
        Assert.Same(weights, ExpectMsg<WeightsUpdate>());
        TestActor.Tell(gradient);
        Assert.Same(gradient, ExpectMsg<GradientComputed>());
    }

    [Fact]
    public void SetupRun_IsVerified_ACopyArrives()
    {
        var setup = new SetupRun("run", [2, 2], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy, 4, 1, 8, "h",
            ScalingKind.None, FloatTensor.CopyOf([0f, 0f]), FloatTensor.CopyOf([1f, 1f]), "127.0.0.1:9");
        TestActor.Tell(setup);
        var copy = ExpectMsg<SetupRun>();
        Assert.NotSame(setup, copy);
        Assert.Equal("127.0.0.1:9", copy.TensorEndpoint);
    }
}
