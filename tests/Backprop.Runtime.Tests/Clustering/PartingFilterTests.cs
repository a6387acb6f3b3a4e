using Akka.Event;
using Backprop.Clustering;

namespace Backprop.Runtime.Tests.Clustering;

/// <summary>The transport's reports of peers hanging up (or not there yet) are logged during a run and dropped between runs.</summary>
public class PartingFilterTests
{
    private const string EndpointWriter = "akka://backprop/system/endpointManager/reliableEndpointWriter-akka.tcp%3A%2F%2Fbackprop%40127.0.0.1%3A45575-1/endpointWriter";
    private const string Channel = "TcpServerHandler (akka://backprop)";

    private static bool Kept(Akka.Actor.ActorSystem system, LogEvent e) => system.Settings.LogFilter.ShouldTryKeepMessage(e, out _);

    [Fact]
    public async Task Node_KeepsTransportReportsDuringARun_DropsThemBetweenRuns_KeepsEverythingElse()
    {
        var settings = new NodeSettings("coordinator", Host: "127.0.0.1", Port: 0);
        var system = settings.CreateSystem(settings.ToConfig());
        try
        {
            var disassociated = new Error(new InvalidOperationException("Disassociated"), EndpointWriter, typeof(object), "Disassociated");
            var gated = new Warning(EndpointWriter, typeof(object), "Association with remote system … has failed; address is now gated for 5000 ms.");
            var channel = new Warning(Channel, typeof(object), "Unable to REMOVE channel from connection group. May not shut down cleanly.");
            var unreachable = new Warning("remoting (akka://backprop)", typeof(object), "Tried to associate with unreachable remote address");
            var joinRetry = new Warning("akka.tcp://backprop@127.0.0.1:33783/system/cluster/core/daemon/joinSeedNodeProcess-2", typeof(object),
                "Couldn't join seed nodes after [2] attempts, will try again.");
            var ours = new Warning("akka://backprop/user/coordinator", typeof(object), "worker lost");
            var info = new Info(EndpointWriter, typeof(object), "Removing receive buffers");

            LogEvent[] transport = [disassociated, gated, channel, unreachable, joinRetry];
            Assert.All(transport, e => Assert.True(Kept(system, e)));

            NodeSettings.RunIsOver(system);

            Assert.All(transport, e => Assert.False(Kept(system, e)));
            Assert.True(Kept(system, ours));
            Assert.True(Kept(system, info));

            // A node that takes part in a run again (a staying worker that joined the next coordinator).
            NodeSettings.RunHasStarted(system);

            Assert.All(transport, e => Assert.True(Kept(system, e)));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task Node_ThatShutsDown_ExpectsItsPeersToHangUp()
    {
        var settings = new NodeSettings("worker", Host: "127.0.0.1", Port: 0, Coordinator: "127.0.0.1:4053");
        var system = settings.CreateSystem(settings.ToConfig());
        var gated = new Warning(EndpointWriter, typeof(object), "Association with remote system … has failed");
        Assert.True(Kept(system, gated));

        await Akka.Actor.CoordinatedShutdown.Get(system).Run(Akka.Actor.CoordinatedShutdown.ClrExitReason.Instance);

        Assert.False(Kept(system, gated));
    }
}
