using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Security;

/// <summary>
/// Tests only: a process that never joined the cluster. An actor system on 127.0.0.1, port 0, with
/// the plain remote provider, Akka's defaults (JSON for any type) and serializers that claim a chosen
/// serializer id and manifest and write chosen bytes (<see cref="Forged"/>). It sends to actors by
/// their address (a resolved reference, not an actor selection, which untrusted mode would drop).
/// </summary>
internal sealed class HostileNode : IDisposable
{
    public ActorSystem System { get; }

    public HostileNode()
    {
        System = ActorSystem.Create("backprop", ConfigurationFactory.ParseString($$"""
            akka {
              loglevel = WARNING
              actor.provider = remote
              remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0, maximum-frame-size = 1048576b }
              coordinated-shutdown.run-by-clr-shutdown-hook = off
              actor {
                serializers {
                  as-json = "{{Name<AsJson.Serializer>()}}"
                  as-protocol = "{{Name<AsProtocol.Serializer>()}}"
                  as-control = "{{Name<AsControl.Serializer>()}}"
                  as-hyperion = "{{Name<AsHyperion.Serializer>()}}"
                  as-refusing = "{{Name<AsRefusing.Serializer>()}}"
                  backprop = "{{Name<ProtocolSerializer>()}}"
                  backprop-control = "{{Name<ControlMessageSerializer>()}}"
                }
                serialization-bindings {
                  "{{Name<AsJson>()}}" = as-json
                  "{{Name<AsProtocol>()}}" = as-protocol
                  "{{Name<AsControl>()}}" = as-control
                  "{{Name<AsHyperion>()}}" = as-hyperion
                  "{{Name<AsRefusing>()}}" = as-refusing
                  "{{Name<ITensorMessage>()}}" = backprop
                  "{{Name<IControlMessage>()}}" = backprop-control
                }
                serialization-identifiers {
                  "{{Name<ProtocolSerializer>()}}" = {{ProtocolSerializer.Id}}
                  "{{Name<ControlMessageSerializer>()}}" = {{ControlMessageSerializer.Id}}
                }
              }
            }
            """));
    }

    private static string Name<T>() => $"{typeof(T).FullName}, {typeof(T).Assembly.GetName().Name}";

    /// <summary>A reference to the actor at <paramref name="path"/> (akka.tcp://…/user/…) on another node.</summary>
    public IActorRef Resolve(string path) => ((ExtendedActorSystem)System).Provider.ResolveActorRef(path);

    /// <summary>
    /// Tells the actor, then asks it Identify over the same connection: once the answer is in, the
    /// messages before it have been delivered or dropped (a connection delivers in order).
    /// </summary>
    public static async Task TellThenSentinelAsync(IActorRef target, params object[] messages)
    {
        foreach (var message in messages) target.Tell(message);
        var identity = await target.Ask<ActorIdentity>(new Identify("sentinel"), TimeSpan.FromSeconds(30));
        Assert.Equal("sentinel", identity.MessageId);
    }

    /// <summary>Hyperion's bytes for <paramref name="value"/>, with no allow-list (what an attacker's Hyperion writes).</summary>
    public static byte[] HyperionBytes(object value)
    {
        var serializer = new Hyperion.Serializer();
        using var stream = new MemoryStream();
        serializer.Serialize(value, stream);
        return stream.ToArray();
    }

    /// <summary>The object of type <typeparamref name="T"/> without running a constructor (Hyperion creates objects this way).</summary>
    public static T Uninitialized<T>() => (T)RuntimeHelpers.GetUninitializedObject(typeof(T));

    public void Dispose() => System.Terminate().Wait(TimeSpan.FromSeconds(10));
}

/// <summary>A payload that claims a serializer id and a manifest, with chosen bytes.</summary>
internal abstract record Forged(string Manifest, byte[] Bytes)
{
    public abstract class ForgingSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
    {
        public override string Manifest(object o) => ((Forged)o).Manifest;
        public override byte[] ToBinary(object obj) => ((Forged)obj).Bytes;
        public override object FromBinary(byte[] bytes, string manifest) => throw new NotSupportedException("the hostile node only sends");
    }
}

/// <summary>Claims Akka's JSON serializer (Newtonsoft, id 1).</summary>
internal sealed record AsJson(string Manifest, byte[] Bytes) : Forged(Manifest, Bytes)
{
    public sealed class Serializer(ExtendedActorSystem system) : ForgingSerializer(system) { public override int Identifier => 1; }
}

/// <summary>Claims the protocol's serializer (id 2701).</summary>
internal sealed record AsProtocol(string Manifest, byte[] Bytes) : Forged(Manifest, Bytes)
{
    public sealed class Serializer(ExtendedActorSystem system) : ForgingSerializer(system) { public override int Identifier => ProtocolSerializer.Id; }
}

/// <summary>Claims the control messages' Hyperion (id 2702).</summary>
internal sealed record AsControl(string Manifest, byte[] Bytes) : Forged(Manifest, Bytes)
{
    public sealed class Serializer(ExtendedActorSystem system) : ForgingSerializer(system) { public override int Identifier => ControlMessageSerializer.Id; }
}

/// <summary>Claims Akka.Serialization.Hyperion's own id (-5), which a node registers if its configuration names "hyperion".</summary>
internal sealed record AsHyperion(string Manifest, byte[] Bytes) : Forged(Manifest, Bytes)
{
    public sealed class Serializer(ExtendedActorSystem system) : ForgingSerializer(system) { public override int Identifier => -5; }
}

/// <summary>Claims the refusing serializer (id 2700).</summary>
internal sealed record AsRefusing(string Manifest, byte[] Bytes) : Forged(Manifest, Bytes)
{
    public sealed class Serializer(ExtendedActorSystem system) : ForgingSerializer(system) { public override int Identifier => RefusingSerializer.Id; }
}

/// <summary>A foreign type: its constructor records that it ran (what a gadget chain needs).</summary>
public sealed class Gadget
{
    private static int _created;
    public static int Created => Volatile.Read(ref _created);
    public string? Command { get; set; }
    public Gadget() => Interlocked.Increment(ref _created);
}

/// <summary>A foreign actor type, for remote deployment: its constructor records that it ran.</summary>
public sealed class GadgetActor : ReceiveActor
{
    private static int _created;
    public static int Created => Volatile.Read(ref _created);
    public GadgetActor() => Interlocked.Increment(ref _created);
}

/// <summary>A foreign exception type: its serialization constructor records that it ran.</summary>
public sealed class GadgetException : Exception
{
    private static int _created;
    public static int Created => Volatile.Read(ref _created);
    public GadgetException() { }
    public GadgetException(string message) : base(message) { }
    public GadgetException(string message, Exception inner) : base(message, inner) { }
#pragma warning disable SYSLIB0051 // what Akka.Remote calls to rebuild an exception
    private GadgetException(System.Runtime.Serialization.SerializationInfo info, System.Runtime.Serialization.StreamingContext context) : base(info, context) =>
        Interlocked.Increment(ref _created);
#pragma warning restore SYSLIB0051
}
