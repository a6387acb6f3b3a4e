using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Backprop.Clustering;
using Backprop.Coordinator.Actors;
using Backprop.Coordinator.Training;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Protocol;
using Backprop.Tests.Common;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Tests.Clustering;

/// <summary>
/// Mutual TLS across nodes on 127.0.0.1 (port 0) in this process: a TLS cluster trains to the bits
/// of a plaintext run, and nodes without a certificate of the cluster's CA never get in.
/// </summary>
public sealed class TlsClusterTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private static readonly DataSplit Digits = DataSources.Load(new DataOptions("digits"));
    private static readonly FeatureScaling Scaling = FeatureScaling.Fit(ScalingKind.Max, Digits.Train);
    private static readonly DataSet Train = Scaling.Apply(Digits.Train);
    private static readonly DataSet Test = Scaling.Apply(Digits.Test);
    private static TestCertificates Certificates => TestCertificates.Instance;

    private readonly List<ActorSystem> _systems = [];
    private readonly List<string> _files = [];

    public void Dispose()
    {
        Task.WaitAll([.. _systems.Select(s => s.Terminate())], TimeSpan.FromSeconds(20));
        foreach (var file in _files) File.Delete(file);
    }

    private static TrainingRun Run(int epochs) => new(new TrainingSettings(
        new Architecture([64, 32, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy),
        new OptimizerSettings(OptimizerKind.Adam, 0.003f), BatchSize: 32, Epochs: epochs, Seed: 5, ChunkSize: 8), Train, Test, Scaling);

    private static float[] InProcessResult(int epochs) =>
        TrainingHost.RunLocalAsync(Run(epochs), 1, new CoordinatorSettings()).GetAwaiter().GetResult().Parameters.Span.ToArray();

    [Fact]
    public async Task LoopbackRunWithTls_EndsWithTheBitsOfAPlaintextRun()
    {
        var plaintext = await TrainingHost.RunLoopbackAsync(Run(2), 2, new CoordinatorSettings());
        var tls = await TrainingHost.RunLoopbackAsync(Run(2), 2, new CoordinatorSettings(), tls: TestCertificates.Files(Certificates.Node));
        Assert.Equal(plaintext.Parameters.Span.ToArray(), tls.Parameters.Span.ToArray());
        Assert.Equal(InProcessResult(2), tls.Parameters.Span.ToArray());
    }

    /// <summary>Puts the coordinator node's warnings and errors in a queue.</summary>
    private sealed class LogTap : ReceiveActor
    {
        public LogTap(BlockingCollection<string> log)
        {
            Receive<Warning>(w => log.Add(w.Message?.ToString() ?? ""));
            Receive<Error>(e => log.Add((e.Message?.ToString() ?? "") + " " + e.Cause?.Message));
        }
    }

    /// <summary>Records the members that come up, and the outcome.</summary>
    private sealed class Listener : ReceiveActor
    {
        public Listener(TaskCompletionSource<TrainingFinished> done, ConcurrentBag<Address> members)
        {
            Receive<TrainingFinished>(f => done.TrySetResult(f));
            Receive<TrainingFailed>(f => done.TrySetException(new TrainingFailedException(f.Reason)));
            Receive<ClusterEvent.MemberUp>(up => members.Add(up.Member.Address));
            Receive<object>(_ => { });
        }
    }

    private string HoconFile(string text)
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, text);
        _files.Add(file);
        return file;
    }

    private static string Wait(BlockingCollection<string> log, Func<string, bool> match, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (log.TryTake(out var line, deadline - DateTime.UtcNow) && match(line)) return line;
        }
        throw new TimeoutException($"the coordinator logged no {what} within {Timeout.TotalSeconds} s");
    }

    [Fact]
    public async Task NodesWithACertificateOfAnotherCaOrNone_CannotJoin_AndTheClusterTrainsToTheEnd()
    {
        const int epochs = 2;
        var coordinatorNode = new NodeSettings(NodeSettings.CoordinatorRole, "127.0.0.1", Port: 0, MaximumFrameBytes: 1 << 20,
            Tls: TestCertificates.Files(Certificates.Node));
        var coordinator = coordinatorNode.CreateSystem(coordinatorNode.ToConfig());
        _systems.Add(coordinator);
        var log = new BlockingCollection<string>();
        var tap = coordinator.ActorOf(Props.Create(() => new LogTap(log)), "log-tap");
        coordinator.EventStream.Subscribe(tap, typeof(Warning));
        coordinator.EventStream.Subscribe(tap, typeof(Error));
        var cluster = Akka.Cluster.Cluster.Get(coordinator);
        cluster.Join(cluster.SelfAddress);
        var done = new TaskCompletionSource<TrainingFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
        var members = new ConcurrentBag<Address>();
        var listener = coordinator.ActorOf(Props.Create(() => new Listener(done, members)), "listener");
        cluster.Subscribe(listener, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
        coordinator.ActorOf(TrainingCoordinator.Props(Run(epochs),
            new CoordinatorSettings(MinWorkers: 2, DiscoverClusterWorkers: true) { Channel = coordinatorNode.Channel }, listener), "coordinator");
        Assert.Equal("akka.ssl.tcp", cluster.SelfAddress.Protocol);
        var seed = $"{cluster.SelfAddress.Host}:{cluster.SelfAddress.Port}";
        var worker = new NodeSettings(NodeSettings.WorkerRole, "127.0.0.1", Port: 0, Coordinator: seed, MaximumFrameBytes: 1 << 20);
        var strangersJoined = 0;
        ActorSystem Stranger(NodeSettings settings)
        {
            var system = WorkerNode.Start(settings, _ => Train, threads: 1, onJoined: () => Interlocked.Increment(ref strangersJoined));
            _systems.Add(system);
            return system;
        }

        // A node without TLS: its plaintext handshake is refused.
        var plain = Stranger(worker);
        var refusal = Wait(log, line => line.Contains("TLS", StringComparison.Ordinal), "refused plaintext connection");
        Assert.DoesNotContain("TLS: refusing", refusal); // Akka's own report of a handshake that is no TLS

        // A node with TLS but no certificate to show: refused for presenting none.
        var rogueSsl = $$"""
            akka.remote.dot-netty.tcp.enable-ssl = on
            akka.remote.dot-netty.tcp.ssl {
              suppress-validation = on
              certificate { path = "{{Certificates.Rogue}}", password = "{{TestCertificates.Password}}" }
            }
            """;
        var none = Stranger(worker with { ConfigFile = HoconFile(rogueSsl + "\nakka.remote.dot-netty.tcp.ssl.require-mutual-authentication = off") });
        Wait(log, line => line.Contains("did not provide a certificate"), "refusal of a node without a certificate");

        // A node with a certificate of another CA, which trusts anything: refused by the cluster's CA check.
        var rogue = Stranger(worker with { ConfigFile = HoconFile(rogueSsl) });
        Wait(log, line => line.Contains("TLS: refusing") && line.Contains("CN=rogue") && line.Contains("not issued by the cluster's CA"), "refusal of the other CA's node");
        var strangers = new[] { plain, none, rogue }.Select(s => Akka.Cluster.Cluster.Get(s).SelfAddress).ToHashSet();

        // Members: both ports speak TLS, the run ends with the bits of one process.
        foreach (var pfx in new[] { Certificates.Node, Certificates.OtherNode })
            _systems.Add(WorkerNode.Start(worker with { Tls = TestCertificates.Files(pfx) }, _ => Train, threads: 1));
        var finished = await done.Task.WaitAsync(Timeout);
        Assert.Equal(InProcessResult(epochs), finished.Parameters.Span.ToArray());
        Assert.Equal(0, Volatile.Read(ref strangersJoined));
        Assert.DoesNotContain(members, strangers.Contains);
        Assert.Equal(3, members.Count); // the coordinator and the two members
    }
}
