using Akka.Configuration;
using Backprop.Protocol;

namespace Backprop;

/// <summary>What every actor system of a run is configured with, whatever its transport: the serializers and the worker's dispatcher.</summary>
public static class RuntimeConfig
{
    /// <summary>
    /// The dispatcher worker actors run on: a thread of their own each, so long gradient work never
    /// starves the coordinator, the scheduler or the node's heartbeats.
    /// </summary>
    public const string WorkerDispatcher = "backprop.worker-dispatcher";

    /// <summary>The settings every node and the in-process system start from.</summary>
    public static readonly Config Common = ConfigurationFactory.ParseString($$"""
        {{WorkerDispatcher}} { type = PinnedDispatcher }
        """).WithFallback(ProtocolConfig.Serialization);
}
