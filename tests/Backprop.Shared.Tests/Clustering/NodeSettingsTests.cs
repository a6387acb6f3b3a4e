using System.Net;
using System.Net.Sockets;
using Backprop.Clustering;

namespace Backprop.Shared.Tests.Clustering;

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
    public void CreateSystem_AddressOfNoInterfaceHere_IsRefusedNamingTheAddress()
    {
        // 192.0.2.0/24 is reserved for documentation (RFC 5737): no machine has it.
        var settings = new NodeSettings("worker", Host: "192.0.2.1", Port: 0, Coordinator: "127.0.0.1:4053");

        var refused = Assert.Throws<InvalidInputException>(() => settings.CreateSystem(settings.ToConfig()));
        Assert.Contains("cannot listen on 192.0.2.1:0", refused.Message);
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
