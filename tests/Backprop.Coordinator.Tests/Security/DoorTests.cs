using System.Text;
using Akka.Actor;
using Akka.Event;
using Backprop.Clustering;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Tests.Actors;
using Backprop.Protocol;
using Backprop.Worker;

namespace Backprop.Coordinator.Tests.Security;

/// <summary>
/// A coordinator node and a worker node on 127.0.0.1 (port 0), and a <see cref="HostileNode"/> that
/// never joins: whatever serializer id and type it names, nothing of a foreign type is created, and
/// each payload is dropped with a warning from the receiving transport.
/// </summary>
public sealed class DoorTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly string GadgetType = $"{typeof(Gadget).FullName}, {typeof(Gadget).Assembly.GetName().Name}";
    private readonly ActorSystem _coordinatorNode;
    private readonly ActorSystem _workerNode;
    private readonly HostileNode _hostile = new();

    public DoorTests() : base("akka.test.single-expect-default = 30s")
    {
        _coordinatorNode = new NodeSettings(NodeSettings.CoordinatorRole, Port: 0).CreateSystem(new NodeSettings(NodeSettings.CoordinatorRole, Port: 0).ToConfig()
            .WithFallback(Akka.Configuration.ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off")));
        var cluster = Akka.Cluster.Cluster.Get(_coordinatorNode);
        cluster.Join(cluster.SelfAddress);
        // Waits for a second worker that never comes: the run stays open.
        _coordinatorNode.ActorOf(TrainingCoordinator.Props(TinyRun.NewRun(),
            new CoordinatorSettings(MinWorkers: 2, WorkerWaitTimeout: TimeSpan.FromHours(1), DiscoverClusterWorkers: true), CreateTestProbe().Ref), WorkerNode.CoordinatorActorName);
        var address = cluster.SelfAddress;
        _workerNode = WorkerNode.Start(new NodeSettings(NodeSettings.WorkerRole, Port: 0, Coordinator: $"{address.Host}:{address.Port}"), _ => TinyRun.Data, threads: 1);
    }

    private string CoordinatorPath => $"{Akka.Cluster.Cluster.Get(_coordinatorNode).SelfAddress}/user/{WorkerNode.CoordinatorActorName}";
    private string WorkerPath => $"{Akka.Cluster.Cluster.Get(_workerNode).SelfAddress}/user/{WorkerNode.ActorName}";

    /// <summary>Payloads naming a foreign type, each under another serializer id.</summary>
    private static Forged[] ForeignPayloads()
    {
        var json = Encoding.UTF8.GetBytes("{\"Command\":\"touch /tmp/pwned\"}");
        var hyperion = HostileNode.HyperionBytes(HostileNode.Uninitialized<Gadget>());
        return
        [
            new AsJson(GadgetType, json),                     // Akka's JSON id: registered by default
            new AsControl("", hyperion),                      // the control messages' Hyperion: the type is not on its list
            new AsControl(GadgetType, hyperion),
            new AsHyperion(GadgetType, hyperion),             // Akka.Serialization.Hyperion's own id
            new AsProtocol(GadgetType, json),                 // the protocol's serializer: unknown manifest
            new AsRefusing(GadgetType, json),                 // the System.Object door
        ];
    }

    [Theory]
    [InlineData("coordinator")]
    [InlineData("worker")]
    public async Task ForeignTypes_UnderAnySerializerId_AreDroppedAndLogged_AndNothingIsCreated(string target)
    {
        await AwaitWorkerSetUpAsync();
        var system = target == "coordinator" ? _coordinatorNode : _workerNode;
        var log = CreateTestProbe();
        system.EventStream.Subscribe(log.Ref, typeof(Warning));
        var created = Gadget.Created;
        var payloads = ForeignPayloads();

        await HostileNode.TellThenSentinelAsync(_hostile.Resolve(target == "coordinator" ? CoordinatorPath : WorkerPath), payloads);

        Assert.Equal(created, Gadget.Created);
        foreach (var payload in payloads)
        {
            var id = payload switch
            {
                AsJson => 1, AsControl => ControlMessageSerializer.Id, AsHyperion => -5, AsProtocol => ProtocolSerializer.Id, _ => RefusingSerializer.Id,
            };
            log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains($"Deserialization failed for message with serializer id [{id}]", StringComparison.Ordinal),
                hint: $"the drop of a payload under id {id} is logged");
        }
    }

    /// <summary>
    /// Akka.Remote's own messages that carry an exception (a Status.Failure, a Resume system message)
    /// are refused before the exception's type is built: Akka would call the serialization constructor
    /// of whatever type the payload names.
    /// </summary>
    [Theory]
    [InlineData("coordinator")]
    [InlineData("worker")]
    public async Task ExceptionsInAkkasOwnMessages_AreRefused_AndTheTypeTheyNameIsNotBuilt(string target)
    {
        await AwaitWorkerSetUpAsync();
        var system = target == "coordinator" ? _coordinatorNode : _workerNode;
        var log = CreateTestProbe();
        system.EventStream.Subscribe(log.Ref, typeof(Warning));
        var created = GadgetException.Created;
        var victim = _hostile.Resolve(target == "coordinator" ? CoordinatorPath : WorkerPath);

        await HostileNode.TellThenSentinelAsync(victim, new Status.Failure(new GadgetException("from a stranger")));
        // Last: the victim drops the stranger's connection over it, and what follows would be lost.
        ((IInternalActorRef)victim).SendSystemMessage(new Akka.Dispatch.SysMsg.Resume(new GadgetException("from a stranger")));

        // The Status.Failure is dropped with the connection kept; a system message that cannot be read
        // fails the stranger's association (gated for a few seconds).
        foreach (var drop in new[] { $"serializer id [{GuardedMiscSerializer.Id}] and manifest [STF]", "refusing a system message of type 'Akka.Dispatch.SysMsg.Resume'" })
        {
            log.FishForMessage(m => m is Warning w && w.Message.ToString()!.Contains(drop, StringComparison.Ordinal), hint: $"'{drop}' is logged");
        }
        Assert.Equal(created, GadgetException.Created);
    }

    /// <summary>Remote deployment (DaemonMsgCreate to /remote) from a non-member creates no actor: untrusted mode drops it.</summary>
    [Fact]
    public async Task RemoteDeployment_FromANonMember_CreatesNoActor()
    {
        var created = GadgetActor.Created;
        var address = Akka.Cluster.Cluster.Get(_coordinatorNode).SelfAddress;
        _hostile.System.ActorOf(Props.Create(() => new GadgetActor()).WithDeploy(new Deploy(new RemoteScope(address))), "gadget");
        await HostileNode.TellThenSentinelAsync(_hostile.Resolve(CoordinatorPath));
        Assert.Equal(created, GadgetActor.Created);
    }

    /// <summary>The worker node has joined and its worker was set up: cluster, Identify-based discovery and the setup work in untrusted mode.</summary>
    private async Task AwaitWorkerSetUpAsync()
    {
        var coordinatorCluster = Akka.Cluster.Cluster.Get(_coordinatorNode);
        await AwaitConditionAsync(() => Task.FromResult(coordinatorCluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == 2));
    }

    protected override void AfterAll()
    {
        _hostile.Dispose();
        Task.WhenAll(_workerNode.Terminate(), _coordinatorNode.Terminate()).Wait(TimeSpan.FromSeconds(20));
        base.AfterAll();
    }
}
