using Akka.Configuration;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>The actor system of the protocol specs: every message between actors goes through its serializer.</summary>
internal static class SpecConfig
{
    public static readonly Config Serialized = ConfigurationFactory.ParseString("""
        akka.loglevel = INFO
        akka.actor.serialize-messages = on
        akka.test.single-expect-default = 10s
        """).WithFallback(ProtocolConfig.Serialization);
}
