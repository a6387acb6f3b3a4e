using Akka.Actor;
using Akka.Cluster;
using Backprop.Clustering;
using Backprop.Data;

namespace Backprop.Worker;

/// <summary>A worker node: an actor system with role "worker" holding the worker actor at /user/worker.</summary>
public static class WorkerNode
{
    /// <summary>The worker actor's name on a worker node (/user/worker), where the coordinator looks for it.</summary>
    public const string ActorName = "worker";

    /// <summary>The coordinator actor's name on the coordinator node (/user/coordinator): workers take orders from that actor only.</summary>
    public const string CoordinatorActorName = "coordinator";

    /// <summary>
    /// Starts a worker node and asks to join the coordinator named in <paramref name="cluster"/>. The
    /// coordinator finds the worker by membership. <paramref name="onRunFinished"/> runs when the run
    /// ends, <paramref name="onJoined"/> when it sees the coordinator up (its own MemberUp can come much
    /// later on a busy machine), <paramref name="onCoordinatorLost"/> when the coordinator leaves or is removed,
    /// <paramref name="onRefused"/> when the worker cannot take part in a run. A node started
    /// <paramref name="betweenRuns"/> (waiting for a coordinator that has gone, to come back) does not
    /// log the transport's failures to reach it until it sees the coordinator up. <paramref name="fault"/>
    /// is a fault to inject, for tests.
    /// </summary>
    public static ActorSystem Start(
        NodeSettings cluster, Func<FeatureScaling, DataSet> loadData, int threads,
        Action? onRunFinished = null, Action? onCoordinatorLost = null, Action<string>? onRefused = null, bool betweenRuns = false,
        Action? onJoined = null, WorkerFault? fault = null)
    {
        if (cluster.SeedAddress is null) throw new ArgumentException("a worker needs the coordinator's address", nameof(cluster));
        var system = cluster.CreateSystem(cluster.ToConfig());
        var address = cluster.SeedAddressOn(system)!; // akka.ssl.tcp when TLS is on
        if (betweenRuns) NodeSettings.RunIsOver(system);
        var frame = system.Settings.Config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? NodeSettings.DefaultMaximumFrameBytes;
        system.ActorOf(
            GradientWorker.Props(ActorRefs.Nobody, loadData, threads, frame, onRunFinished, onRefused, cluster.Channel, fault).WithDispatcher(RuntimeConfig.WorkerDispatcher),
            ActorName);
        system.ActorOf(Props.Create(() => new CoordinatorWatch(onJoined, onCoordinatorLost)), "coordinator-watch");
        Akka.Cluster.Cluster.Get(system).JoinSeedNodes([address]);
        return system;
    }

    /// <summary>
    /// Calls back when this node first sees the member with role "coordinator" up (it has joined the
    /// coordinator's cluster; the transport's reports are turned back on) and when that member
    /// leaves, is removed or downed.
    /// </summary>
    private sealed class CoordinatorWatch : ReceiveActor
    {
        public CoordinatorWatch(Action? onJoined, Action? onLost)
        {
            var cluster = Akka.Cluster.Cluster.Get(Context.System);
            var seen = false;
            Receive<ClusterEvent.MemberUp>(up =>
            {
                if (!up.Member.HasRole(NodeSettings.CoordinatorRole) || seen) return;
                seen = true;
                // In the coordinator's cluster: what the transport reports matters again.
                NodeSettings.RunHasStarted(Context.System);
                onJoined?.Invoke();
            });
            Receive<ClusterEvent.MemberRemoved>(removed =>
            {
                if (removed.Member.HasRole(NodeSettings.CoordinatorRole) && seen) onLost?.Invoke();
            });
            Receive<ClusterEvent.IMemberEvent>(_ => { });
            cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));
        }
    }
}
