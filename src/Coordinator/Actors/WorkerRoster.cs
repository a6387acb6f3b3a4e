using System.Collections.Immutable;
using Akka.Cluster;
using Akka.Remote;
using Backprop.Clustering;
using Backprop.Protocol;
using Backprop.Worker;

namespace Backprop.Coordinator.Actors;

/// <summary>
/// Finds the run's workers and keeps track of which may be given work. A worker announces itself
/// (<see cref="RegisterWorker"/>, in-process) or is found among the cluster's members with role
/// "worker" (its /user/worker actor, asked with Identify). The roster sends it the run's setup, and
/// once the worker accepts, tells the coordinator <see cref="WorkerReady"/>. A worker that stops,
/// leaves, becomes unreachable or is replaced is reported <see cref="WorkerLost"/>.
/// </summary>
/// <remarks>
/// A worker node whose connection drops (its process died, or the network failed) is set aside at
/// once, seconds before the failure detector could mark it unreachable. It stays a member and is
/// asked every <see cref="CoordinatorSettings.SuspendedProbe"/> whether it is there: if it answers it
/// is ready again; if not, failure detection removes it. Messages to workers go out in the
/// coordinator's name, so their answers (SetupAccepted, SetupRefused) reach the coordinator, which
/// hands them to this actor.
/// </remarks>
internal sealed class WorkerRoster : ReceiveActor, IWithTimers
{
    private readonly SetupRun _setup;
    private readonly bool _discover;
    private readonly TimeSpan _probeInterval;
    private readonly IActorRef _coordinator = Context.Parent;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, Standing> _workers = [];
    private readonly Dictionary<Address, IActorRef> _nodes = [];   // cluster mode: node → its worker actor
    private ImmutableList<IActorRef> _ready = [];                 // in the order they became ready
    private readonly RefusedMessages _refused;

    public WorkerRoster(SetupRun setup, bool discoverClusterWorkers, TimeSpan probeInterval)
    {
        (_setup, _discover, _probeInterval) = (setup, discoverClusterWorkers, probeInterval);
        _refused = new RefusedMessages(_log, "coordinator's roster");
        Enrolling();
    }

    public static Props Props(SetupRun setup, bool discoverClusterWorkers, TimeSpan probeInterval) =>
        Akka.Actor.Props.Create(() => new WorkerRoster(setup, discoverClusterWorkers, probeInterval));

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        if (!_discover) return;
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
    }

    protected override void PostStop()
    {
        _refused.LogSummary("stopped");
        if (!_discover) return;
        Cluster.Get(Context.System).Unsubscribe(Self);
        Context.System.EventStream.Unsubscribe(Self);
    }

    /// <summary>During the run: workers come, are set up, go, and are set aside and probed.</summary>
    private void Enrolling()
    {
        Receive<RegisterWorker>(_ => Add(Sender));
        Receive<SetupAccepted>(accepted => Accepted(Sender, accepted));
        Receive<SetupRefused>(refused => Refused(Sender, refused));
        Receive<Terminated>(t => Remove(t.ActorRef, "stopped"));

        // Cluster mode: a worker node that comes up is asked for its /user/worker; one that becomes
        // unreachable or leaves is reported lost at once, without waiting for downing.
        Receive<ClusterEvent.MemberUp>(up => Identify(up.Member));
        Receive<ClusterEvent.ReachableMember>(back => Identify(back.Member));
        Receive<ActorIdentity>(Identified);
        Receive<ClusterEvent.UnreachableMember>(lost => RemoveNode(lost.Member, "is unreachable"));
        Receive<ClusterEvent.MemberLeft>(left => RemoveNode(left.Member, "is leaving the cluster"));
        Receive<ClusterEvent.MemberExited>(left => RemoveNode(left.Member, "is leaving the cluster"));
        Receive<ClusterEvent.MemberRemoved>(removed => RemoveNode(removed.Member, "was removed from the cluster"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<DisassociatedEvent>(lost => Suspend(lost.RemoteAddress));
        Receive<TensorLinkLost>(lost =>
        {
            if (_workers.TryGetValue(lost.Worker, out var standing) && _nodes.ContainsValue(lost.Worker))
                Suspend(lost.Worker, standing, $"the tensor channel to worker {lost.Worker.Path} failed ({lost.Reason}); setting it aside until it answers again or is removed");
        });
        Receive<Probe>(_ => ProbeSuspended());
        Receive<QuarantineWorker>(q => Quarantine(q.Worker, q.Reason));

        Receive<RunOver>(_ => Dismissing());
    }

    /// <summary>After the run: every worker, known or late, is told that it is over.</summary>
    private void Dismissing()
    {
        Timers.CancelAll();
        var finished = new RunFinished(_setup.RunId);
        foreach (var worker in _workers.Keys) worker.Tell(finished, _coordinator);
        Become(() =>
        {
            Receive<RegisterWorker>(_ => Sender.Tell(finished, _coordinator));
            Receive<ActorIdentity>(identity => identity.Subject?.Tell(finished, _coordinator));
            Receive<ClusterEvent.MemberUp>(up => Identify(up.Member));
            ReceiveAny(message => _log.Debug("run finished; ignoring {0}", message));
        });
    }

    private static void Identify(Member member)
    {
        if (!member.HasRole(NodeSettings.WorkerRole) || member.Status != MemberStatus.Up) return;
        Context.ActorSelection(new RootActorPath(member.Address) / "user" / WorkerNode.ActorName).Tell(new Identify(member.Address));
    }

    private void Identified(ActorIdentity identity)
    {
        var subject = identity.Subject is null || identity.Subject.IsNobody() ? null : identity.Subject;
        if (identity.MessageId is not Address address) return;
        // Cluster mode: only a worker member's /user/worker answers for its node (in-process mode has no network).
        if (_discover && (!IsWorkerMember(address)
            || subject is not null && !(Equals(Sender, subject) && subject.Path.Address.Equals(address) && subject.Path.Elements.SequenceEqual(["user", WorkerNode.ActorName]))))
        {
            _refused.Refuse(identity, Sender, "not the answer of a worker member's /user/worker to an Identify of the roster");
            return;
        }
        if (_nodes.TryGetValue(address, out var known) && _workers.TryGetValue(known, out var standing) && standing.Suspended)
        {
            // The answer to a probe: the same worker is back, or the node is still away.
            if (Equals(subject, known))
            {
                Resume(known, standing);
                return;
            }
            if (subject is null) return;
            // A new incarnation of the node at the same address (found through membership): the old
            // worker is gone for good.
            Context.Unwatch(known);
            Remove(known, "was replaced by a new incarnation of its node");
        }
        if (subject is null)
        {
            _log.Warning("worker node {0} has no /user/{1} actor", address, WorkerNode.ActorName);
            return;
        }
        _nodes[address] = subject;
        Add(subject);
    }

    private static bool IsWorkerMember(Address address) =>
        Cluster.Get(Context.System).State.Members.Any(m => m.Address.Equals(address) && m.HasRole(NodeSettings.WorkerRole));

    /// <summary>A worker found by registration or membership: watch it and set it up.</summary>
    private void Add(IActorRef worker)
    {
        if (_workers.ContainsKey(worker)) return;
        _workers[worker] = new Standing();
        Context.Watch(worker);
        worker.Tell(_setup, _coordinator);
        _log.Info("worker {0} found; setting it up", worker.Path);
    }

    /// <summary>No more work for <paramref name="worker"/> in this run, whatever it says from now on.</summary>
    private void Quarantine(IActorRef worker, string why)
    {
        if (!_workers.TryGetValue(worker, out var standing) || standing.Quarantined) return;
        standing.Quarantined = true;
        _log.Error("worker {0} is set aside for the rest of the run: {1}", worker.Path, why);
        NoLongerReady(worker, $"worker {worker.Path} is set aside");
    }

    private void Accepted(IActorRef worker, SetupAccepted accepted)
    {
        if (!_workers.TryGetValue(worker, out var standing))
        {
            _refused.Refuse(accepted, worker, "the roster sent it no setup");
            return;
        }
        if (accepted.RunId != _setup.RunId || standing.SetUp || standing.Quarantined) return;
        standing.SetUp = true;
        standing.TensorEndpoint = accepted.TensorEndpoint;
        if (standing.Suspended) return; // it is ready once its connection is back
        MarkReady(worker, "ready");
    }

    private void Refused(IActorRef worker, SetupRefused refused)
    {
        if (!_workers.ContainsKey(worker))
        {
            _refused.Refuse(refused, worker, "the roster sent it no setup");
            return;
        }
        if (refused.RunId != _setup.RunId) return;
        _log.Error("worker {0} refused the run: {1}", worker.Path, refused.Reason);
        Context.Unwatch(worker);
        _workers.Remove(worker);
    }

    private void MarkReady(IActorRef worker, string what)
    {
        _ready = _ready.Add(worker);
        _log.Info("worker {0} {1} ({2} ready)", worker.Path, what, _ready.Count);
        _coordinator.Tell(new WorkerReady(worker, _ready, _workers[worker].TensorEndpoint));
    }

    private void RemoveNode(Member member, string why)
    {
        if (!member.HasRole(NodeSettings.WorkerRole) || !_nodes.Remove(member.Address, out var worker)) return;
        Context.Unwatch(worker);
        Remove(worker, why);
    }

    private void Remove(IActorRef worker, string why)
    {
        if (!_workers.Remove(worker)) return;
        NoLongerReady(worker, $"worker {worker.Path} {why}");
    }

    /// <summary>The node's connection dropped: no work for its worker until it answers again (or the node is removed).</summary>
    private void Suspend(Address address)
    {
        if (!_nodes.TryGetValue(address, out var worker) || !_workers.TryGetValue(worker, out var standing)) return;
        Suspend(worker, standing, $"lost the connection to worker node {address}; setting it aside until it answers again or is removed");
    }

    private void Suspend(IActorRef worker, Standing standing, string what)
    {
        if (standing.Suspended) return;
        standing.Suspended = true;
        if (!Timers.IsTimerActive(Probe.Key)) Timers.StartPeriodicTimer(Probe.Key, Probe.Instance, _probeInterval);
        NoLongerReady(worker, what);
    }

    private void NoLongerReady(IActorRef worker, string what)
    {
        var wasReady = _ready.Contains(worker);
        _ready = _ready.Remove(worker);
        _log.Warning("{0}; {1} ready workers left", what, _ready.Count);
        if (wasReady) _coordinator.Tell(new WorkerLost(worker, _ready));
    }

    private void ProbeSuspended()
    {
        var suspended = _nodes.Where(n => _workers.TryGetValue(n.Value, out var standing) && standing.Suspended && !standing.Quarantined).ToList();
        if (suspended.Count == 0) Timers.Cancel(Probe.Key);
        foreach (var (address, worker) in suspended) worker.Tell(new Identify(address));
    }

    private void Resume(IActorRef worker, Standing standing)
    {
        standing.Suspended = false;
        if (standing.Quarantined) return;
        if (!standing.SetUp)
        {
            worker.Tell(_setup, _coordinator); // the setup may have been lost with the connection
            return;
        }
        MarkReady(worker, "answers again");
    }

    /// <summary>Where a known worker stands: set up (it accepted the run, naming its tensor endpoint), suspended (its connection dropped).</summary>
    private sealed class Standing
    {
        public bool SetUp { get; set; }
        public string? TensorEndpoint { get; set; }
        public bool Suspended { get; set; }
        /// <summary>Shown wrong, or late too often: it gets no more work in this run.</summary>
        public bool Quarantined { get; set; }
    }

    private sealed class Probe
    {
        public const string Key = "probe-suspended";
        public static readonly Probe Instance = new();
    }
}
