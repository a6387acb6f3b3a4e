using System.Collections.Concurrent;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>
/// The actor system of the protocol specs: every message between actors goes through its serializer.
/// Akka.Remote's serializers (Identify, ActorIdentity, PoisonPill) are added, as on every node: a
/// type no serializer of a node carries is refused. Akka's own local events that the specs tell
/// actors directly (a dropped connection, a stop) pass by <see cref="SameProcessSerializer"/>.
/// </summary>
internal static class SpecConfig
{
    public static readonly Config Serialized = ConfigurationFactory.ParseString($$"""
        akka.loglevel = INFO
        akka.actor.serialize-messages = on
        akka.test.single-expect-default = 10s
        akka.actor {
          serializers.spec-local = "{{typeof(SameProcessSerializer).AssemblyQualifiedName}}"
          serialization-bindings {
            "Akka.Remote.DisassociatedEvent, Akka.Remote" = spec-local
            "Akka.Dispatch.SysMsg.StopChild, Akka" = spec-local
          }
          serialization-identifiers { "{{typeof(SameProcessSerializer).AssemblyQualifiedName}}" = 9901 }
        }
        """).WithFallback(ProtocolConfig.Serialization)
        .WithFallback(ConfigurationFactory.FromResource<Akka.Remote.RemoteSettings>("Akka.Remote.Configuration.Remote.conf"));
}

/// <summary>Tests only: "serializes" an object as a handle to it, for Akka's local events under serialize-messages.</summary>
public sealed class SameProcessSerializer(ExtendedActorSystem system) : Serializer(system)
{
    private static readonly ConcurrentDictionary<long, object> Objects = new();
    private static long _next;

    public override int Identifier => 9901;
    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj)
    {
        var key = Interlocked.Increment(ref _next);
        Objects[key] = obj;
        return BitConverter.GetBytes(key);
    }

    public override object FromBinary(byte[] bytes, Type type) =>
        Objects.TryRemove(BitConverter.ToInt64(bytes), out var obj) ? obj : throw new SerializationException("unknown handle");
}
