using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Backprop.Clustering;

namespace Backprop.Runtime.Tests.Clustering;

/// <summary>A node that cannot listen where it was told says so, naming the address, before anything starts.</summary>
public class NodeSettingsTests
{
    [Fact]
    public void CreateSystem_PortTakenByAnotherProcess_IsRefusedNamingTheAddress()
    {
        using var other = new TcpListener(IPAddress.Loopback, 0);
        other.Start();
        var port = ((IPEndPoint)other.LocalEndpoint).Port;
        var settings = new NodeSettings("coordinator", Host: "127.0.0.1", Port: port);

        var refused = Assert.Throws<InvalidInputException>(() => settings.CreateSystem(settings.ToConfig()));
        Assert.Contains($"127.0.0.1:{port}", refused.Message);
        Assert.Contains("another process is listening there", refused.Message);
    }

    [Fact]
    public void CreateSystem_AddressOfNoInterfaceHere_IsRefusedNamingTheAddress_BeforeAkkaLogsAnything()
    {
        // 192.0.2.0/24 is reserved for documentation (RFC 5737): no machine has it.
        var settings = new NodeSettings("worker", Host: "192.0.2.1", Port: 0, Coordinator: "127.0.0.1:4053");
        var config = ConfigurationFactory.ParseString($"akka.loggers = [\"{typeof(RecordingLogger).AssemblyQualifiedName}\"]")
            .WithFallback(settings.ToConfig());

        var refused = Assert.Throws<InvalidInputException>(() => settings.CreateSystem(config));
        Assert.Contains("cannot listen on 192.0.2.1:0", refused.Message);
        // The transport's own ERROR (with its stack trace) never happens: no system was started.
        Assert.Empty(RecordingLogger.Events);
    }

    [Fact]
    public void CreateSystem_HostThatDoesNotResolve_IsRefusedNamingTheHost()
    {
        var settings = new NodeSettings("coordinator", Host: "no-such-host.invalid", Port: 0);

        var refused = Assert.Throws<InvalidInputException>(() => settings.CreateSystem(settings.ToConfig()));
        Assert.StartsWith("cannot listen on no-such-host.invalid:0 (", refused.Message);
    }

    /// <summary>Akka's log events, for the one test above that may make a system with this logger.</summary>
    public sealed class RecordingLogger : ReceiveActor
    {
        public static readonly ConcurrentQueue<LogEvent> Events = new();

        public RecordingLogger()
        {
            Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
            Receive<LogEvent>(Events.Enqueue);
        }
    }

    [Fact]
    public async Task CreateSystem_FreePort_Listens()
    {
        var settings = new NodeSettings("coordinator", Host: "127.0.0.1", Port: 0);
        var system = settings.CreateSystem(settings.ToConfig());
        try
        {
            Assert.NotEqual(0, Akka.Cluster.Cluster.Get(system).SelfAddress.Port);
        }
        finally
        {
            await system.Terminate();
        }
    }
}
