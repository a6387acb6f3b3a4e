using System.Diagnostics;
using Backprop.Channel;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

/// <summary>One step as the coordinator gives it out: which samples, which weights, which chunk tree.</summary>
/// <param name="Number">The step (and weights version) number.</param>
/// <param name="Epoch">The epoch whose order the sample positions index.</param>
/// <param name="SampleStart">The batch's first position in the epoch's order.</param>
/// <param name="SampleCount">Samples in the batch.</param>
/// <param name="ChunkSize">Samples per chunk.</param>
/// <param name="ParameterCount">Values of a gradient sum.</param>
internal sealed record StepPlan(long Number, int Epoch, int SampleStart, int SampleCount, int ChunkSize, int ParameterCount)
{
    /// <summary>Chunks of the batch.</summary>
    public int ChunkCount => ChunkTree.ChunkCount(SampleCount, ChunkSize);
}

/// <summary>
/// How the coordinator's weights reach a worker: as a frame of the tensor channel to its endpoint,
/// or as a message to a worker in this process (which then holds the tensor until it is replaced).
/// </summary>
internal sealed class WeightsRoute(TensorChannel? channel, Guid run)
{
    /// <summary>Every worker is in this process.</summary>
    public static readonly WeightsRoute InProcess = new(null, Guid.Empty);

    /// <summary>Sends <paramref name="weights"/> to <paramref name="worker"/>, whose channel is at <paramref name="endpoint"/> (null: in this process).</summary>
    public void Send(IActorRef worker, string? endpoint, WeightsUpdate weights, IActorRef sender)
    {
        if (endpoint is null || channel is null)
        {
            worker.Tell(weights with { Parameters = weights.Parameters.Hold() }, sender);
            return;
        }
        channel.Send(endpoint, new FrameHeader(FrameKind.Weights, run, weights.Version, weights.Version), weights.Parameters);
    }
}

/// <summary>
/// The gather of one step, in the style of Akka's DeviceGroupQuery: it gives each ready worker a
/// contiguous range of the step's chunk-tree nodes, collects their sums, gives a node to another
/// worker when its worker is lost, answers wrongly or misses the deadline (the first valid sum wins:
/// any worker computes the same bits), and answers its parent with the nodes added along the chunk
/// tree. Then it stops. It learns of lost and new workers from the coordinator, which hears of them
/// from the roster (the roster watches each worker once for the whole run, instead of a watch and an
/// unwatch over the network every step).
/// </summary>
/// <remarks>
/// Messages to workers go out in the coordinator's name, so a worker answers the coordinator, which
/// hands the answers of this step, and only those, to this actor.
/// </remarks>
internal sealed partial class StepGather : ReceiveActor, IWithTimers
{
    private readonly StepPlan _plan;
    private readonly WeightsUpdate _weights;
    private readonly ComputeSettings _settings;
    private readonly GradientSumPool _pool;
    private readonly WeightsRoute _route;
    private readonly Dictionary<IActorRef, string> _endpoints;
    private readonly IActorRef _coordinator = Context.Parent;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Dictionary<(int Start, int Size), Node> _nodes = [];
    private readonly List<IActorRef> _ready;
    private readonly Dictionary<IActorRef, int> _busy = [];
    private readonly HashSet<IActorRef> _holdWeights = [];
    private readonly HashSet<IActorRef> _faulted = [];     // late or rejected in this step (one strike each)
    private readonly HashSet<IActorRef> _convicted = [];   // shown wrong in this step: nothing more is taken from them
    private readonly Random _random;
    private double _slowestCompute;
    private bool _answered;

    /// <summary>
    /// How long a node may take, how often it may be given out, and which share of the nodes a second
    /// worker computes as well (chosen with a generator seeded by <paramref name="VerifySeed"/>, which
    /// the workers do not know).
    /// </summary>
    internal sealed record ComputeSettings(TimeSpan StepDeadline, int MaxAttempts, double VerifyFraction = 0, int VerifySeed = 0);

    public StepGather(StepPlan plan, WeightsUpdate weights, IReadOnlyList<IActorRef> ready, ComputeSettings settings, GradientSumPool pool,
        WeightsRoute route, IReadOnlyDictionary<IActorRef, string> endpoints, AllReducePlan? allReduce)
    {
        _allReduce = allReduce;
        _plan = plan;
        _weights = weights;
        _settings = settings;
        _pool = pool;
        _route = route;
        _endpoints = new Dictionary<IActorRef, string>(endpoints);
        _ready = [.. ready];
        _random = new Random(settings.VerifySeed);
        Receive<GradientComputed>(HandleResult);
        Receive<VersionMismatch>(HandleVersionMismatch);
        Receive<WorkerReady>(ready =>
        {
            if (ready.TensorEndpoint is { } endpoint) _endpoints[ready.Worker] = endpoint;
            if (_allReduce is null) Join(ready.Worker);
            else JoinAllReduce(ready.Worker);
        });
        Receive<WorkerLost>(lost =>
        {
            if (_allReduce is null) Leave(lost.Worker);
            else RemoveParticipant(lost.Worker, "was lost");
        });
        Receive<NodeComputed>(HandleNodeComputed);
        Receive<PartHashes>(HandlePartHashes);
        Receive<StepReduced>(HandleStepReduced);
        Receive<NeedState>(need => RemoveParticipant(Sender, $"holds version {need.HeldVersion}, not {need.Step}"));
        Receive<Deadline>(_ => HandleDeadline());
        Receive<ActorIdentity>(HandleIdentity);
    }

    /// <summary>
    /// Props for the gather of <paramref name="plan"/>. Weights go by <paramref name="route"/> (in
    /// this process if not given) to the workers' <paramref name="endpoints"/>.
    /// </summary>
    public static Props Props(StepPlan plan, WeightsUpdate weights, IReadOnlyList<IActorRef> ready, ComputeSettings settings, GradientSumPool pool,
        WeightsRoute? route = null, IReadOnlyDictionary<IActorRef, string>? endpoints = null, AllReducePlan? allReduce = null) =>
        Akka.Actor.Props.Create(() => new StepGather(plan, weights, ready, settings, pool, route ?? WeightsRoute.InProcess,
            endpoints ?? new Dictionary<IActorRef, string>(), allReduce));

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Cuts the batch into nodes, one contiguous range of chunks per ready worker, and sends them out.</summary>
    protected override void PreStart()
    {
        var chunkCount = _plan.ChunkCount;
        for (var w = 0; w < _ready.Count; w++)
        {
            int first = w * chunkCount / _ready.Count, end = (w + 1) * chunkCount / _ready.Count;
            if (end == first) continue;
            foreach (var (start, size) in ChunkTree.Blocks(first, end - first, chunkCount))
                _nodes[(start, size)] = new Node(start, size, FirstSample(start), FirstSample(start + size) - FirstSample(start), _ready[w]);
        }
        if (_nodes.Count == 0) // no worker yet: one node for the whole batch, given out when one comes
            _nodes[(0, ChunkTree.RootSize(chunkCount))] = new Node(0, ChunkTree.RootSize(chunkCount), _plan.SampleStart, _plan.SampleCount, null);
        if (_allReduce is not null) BeginAllReduce();
        // Every ready worker gets this version (idle ones too, so any can take over a node).
        else foreach (var worker in _ready) SendWeights(worker);
        var verify = _allReduce is null && _ready.Count > 1 && _settings.VerifyFraction > 0;
        foreach (var node in _nodes.Values)
        {
            Assign(node, exclude: null);
            // A second worker computes a random share of the nodes too: any worker computes the same bits.
            if (verify && _random.NextDouble() < _settings.VerifyFraction)
            {
                node.Verify = true;
                AssignOther(node);
            }
        }
        Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
    }

    private int FirstSample(int chunk) => _plan.SampleStart + Math.Min(chunk * _plan.ChunkSize, _plan.SampleCount);

    private void SendWeights(IActorRef worker)
    {
        if (_holdWeights.Add(worker)) _route.Send(worker, _endpoints.GetValueOrDefault(worker), _weights, _coordinator);
    }

    /// <summary>Gives <paramref name="node"/> to a ready worker: its preferred one, else the least busy other than <paramref name="exclude"/>.</summary>
    private void Assign(Node node, IActorRef? exclude)
    {
        if (_answered) return;
        if (node.Attempts >= _settings.MaxAttempts)
        {
            Fail($"step {_plan.Number}: chunks [{node.Start}, {node.Start + node.Size}) could not be computed after {node.Attempts} attempts");
            return;
        }
        var target = node.Preferred is not null && node.Attempts == 0 && _ready.Contains(node.Preferred) ? node.Preferred : null;
        target ??= LeastBusy(w => !Equals(w, exclude) && !node.AssignedTo.Contains(w))
                   ?? LeastBusy(w => !node.AssignedTo.Contains(w))
                   ?? LeastBusy(_ => true);
        if (target is null) return; // no ready worker: the node waits for one

        Give(node, target);
    }

    private void Give(Node node, IActorRef target)
    {
        node.Attempts++;
        node.AssignedTo.Add(target);
        node.AskedOf.Add(target);
        _busy[target] = _busy.GetValueOrDefault(target) + 1;
        if (_allReduce is null) SendWeights(target);
        target.Tell(Request(node), _coordinator);
        if (node.Attempts > 1) _log.Info("step {0}: chunks [{1}, {2}) given to {3} (attempt {4})", _plan.Number, node.Start, node.Start + node.Size, target.Path, node.Attempts);
    }

    /// <summary>The request for <paramref name="node"/> (all-reduce, with <paramref name="verify"/>: to compute it again and answer with hashes only).</summary>
    private ComputeGradient Request(Node node, bool verify = false) =>
        new(_weights.RunId, _plan.Number, _weights.Version, _plan.Epoch, node.SampleStart, node.SampleCount, node.Start, node.Size, verify);

    /// <summary>
    /// Gives <paramref name="node"/> to a ready worker that has neither computed it nor is computing it
    /// (a verifier, or the third worker that decides between two); false if there is none.
    /// </summary>
    private bool AssignOther(Node node)
    {
        if (_answered) return true;
        var target = LeastBusy(w => !node.AskedOf.Contains(w) && !node.Candidates.Any(c => Equals(c.Worker, w)));
        if (target is null) return false;
        if (node.Attempts >= _settings.MaxAttempts + 2)
        {
            Fail($"step {_plan.Number}: chunks [{node.Start}, {node.Start + node.Size}) could not be verified after {node.Attempts} attempts");
            return true;
        }
        Give(node, target);
        return true;
    }

    private IActorRef? LeastBusy(Func<IActorRef, bool> eligible) =>
        _ready.Where(eligible).OrderBy(w => _busy.GetValueOrDefault(w)).FirstOrDefault();

    private void HandleResult(GradientComputed result)
    {
        try
        {
            Collect(result);
        }
        finally
        {
            result.Sum.Release(); // copied into a sum of the pool, or refused
        }
    }

    private void Collect(GradientComputed result)
    {
        var worker = Sender;
        if (!_nodes.TryGetValue((result.NodeStart, result.NodeSize), out var node) || !node.AskedOf.Contains(worker))
        {
            _log.Warning("step {0}: dropping a result for chunks [{1}, +{2}) from {3}, which were not asked of it", _plan.Number, result.NodeStart, result.NodeSize, worker.Path);
            return;
        }
        if (node.AssignedTo.Remove(worker)) Release(worker);
        if (_convicted.Contains(worker)) return;
        if (node.Result is not null)
        {
            _log.Debug("step {0}: ignoring a duplicate result for chunks [{1}, {2}) from {3}", _plan.Number, node.Start, node.Start + node.Size, worker.Path);
            return;
        }
        if (result.Sum.Length != _plan.ParameterCount || result.SampleCount != node.SampleCount)
        {
            Reject(node, worker, $"of the wrong shape ({result.Sum.Length} values for {result.SampleCount} samples; expected {_plan.ParameterCount} values for {node.SampleCount})");
            return;
        }
        if (!double.IsFinite(result.LossSum) || !result.Sum.AllFinite())
        {
            Reject(node, worker, $"with NaN or infinite values for chunks [{node.Start}, {node.Start + node.Size})");
            return;
        }
        var sum = _pool.Take(_plan.ParameterCount);
        result.Sum.Span.CopyTo(sum.Values);
        (sum.SampleCount, sum.LossSum, sum.CorrectCount) = (result.SampleCount, result.LossSum, result.CorrectCount);
        _slowestCompute = Math.Max(_slowestCompute, result.ComputeSeconds);
        if (node.Verify) Verify(node, worker, sum);
        else Settle(node, worker, sum);
    }

    /// <summary>The node's sum is <paramref name="sum"/>, computed by <paramref name="worker"/>; the step is complete with the last one.</summary>
    private void Settle(Node node, IActorRef worker, GradientSum sum)
    {
        node.Result = sum;
        node.ComputedBy = worker;
        if (_nodes.Values.All(n => n.Result is not null)) Complete();
    }

    /// <summary>
    /// A result for a node that two workers compute: it settles the node when it has the same bits as
    /// another worker's; a worker whose bits differ from two agreeing others is convicted. Two that
    /// differ go to a third worker.
    /// </summary>
    private void Verify(Node node, IActorRef worker, GradientSum sum)
    {
        var agreeing = node.Candidates.FirstOrDefault(c => SameBits(c.Sum, sum));
        if (agreeing.Sum is not null)
        {
            var wrong = node.Candidates.Where(c => c.Sum != agreeing.Sum).ToList();
            _pool.Return([sum, .. wrong.Select(c => c.Sum)]);
            node.Candidates.Clear();
            _log.Debug("step {0}: chunks [{1}, {2}) verified: {3} and {4} agree", _plan.Number, node.Start, node.Start + node.Size, agreeing.Worker.Path, worker.Path);
            (node.Result, node.ComputedBy) = (agreeing.Sum, agreeing.Worker);
            // First the wrong ones go, with whatever else they computed in this step; then the step may be complete.
            foreach (var (bad, _) in wrong)
                Convict(bad, $"its gradient for chunks [{node.Start}, {node.Start + node.Size}) of step {_plan.Number} differs from the one {agreeing.Worker.Path} and {worker.Path} both computed");
            if (!_answered && _nodes.Values.All(n => n.Result is not null)) Complete();
            return;
        }
        node.Candidates.Add((worker, sum));
        if (node.AssignedTo.Count > 0) return; // the other worker is still computing it
        if (node.Candidates.Count == 1)
        {
            if (AssignOther(node)) return;
            // The other workers are gone: nothing to compare with.
            _log.Warning("step {0}: no other worker left to verify chunks [{1}, {2}); taking {3}'s result unverified", _plan.Number, node.Start, node.Start + node.Size, worker.Path);
            node.Candidates.Clear();
            Settle(node, worker, sum);
            return;
        }
        var who = string.Join(" and ", node.Candidates.Select(c => c.Worker.Path.ToString()));
        if (node.Candidates.Count > 2 || !AssignOther(node))
        {
            Fail($"step {_plan.Number}: {who} computed different gradients for chunks [{node.Start}, {node.Start + node.Size}), and no other worker is left to decide");
            return;
        }
        _log.Warning("step {0}: {1} computed different gradients for chunks [{2}, {3}); asking a third worker", _plan.Number, who, node.Start, node.Start + node.Size);
    }

    /// <summary>Whether two sums are the same bits: values, count, cost and correct count.</summary>
    private static bool SameBits(GradientSum a, GradientSum b) =>
        a.SampleCount == b.SampleCount && a.CorrectCount == b.CorrectCount
        && BitConverter.DoubleToInt64Bits(a.LossSum) == BitConverter.DoubleToInt64Bits(b.LossSum)
        && System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Values.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Values.AsSpan()));

    /// <summary>
    /// <paramref name="worker"/> computed a wrong result: the coordinator sets it aside for the run, and
    /// nothing it computed in this step is used (its other nodes are computed again elsewhere).
    /// </summary>
    private void Convict(IActorRef worker, string why)
    {
        if (!_convicted.Add(worker)) return;
        _log.Error("step {0}: worker {1} is wrong: {2}; setting it aside", _plan.Number, worker.Path, why);
        _coordinator.Tell(new WorkerFaulted(worker, why, Proven: true));
        if (_allReduce is not null)
        {
            StartOver(worker);
            return;
        }
        foreach (var node in _nodes.Values)
        {
            var theirs = node.Candidates.Where(c => Equals(c.Worker, worker)).ToList();
            node.Candidates.RemoveAll(c => Equals(c.Worker, worker));
            _pool.Return(theirs.Select(c => c.Sum));
            if (node.Result is not null && Equals(node.ComputedBy, worker))
            {
                _pool.Return([node.Result]);
                (node.Result, node.ComputedBy) = (null, null);
                node.Verify = true; // recomputed and checked by two others, if there are two
            }
        }
        Leave(worker);
        foreach (var node in _nodes.Values.Where(n => n.Result is null && n.Scalars is null && n.AssignedTo.Count == 0 && n.Candidates.Count == 0)) Assign(node, exclude: worker);
    }

    /// <summary>A strike against <paramref name="worker"/> (at most one a step): late, or a result refused.</summary>
    private void Fault(IActorRef worker, string why)
    {
        if (_faulted.Add(worker)) _coordinator.Tell(new WorkerFaulted(worker, why, Proven: false));
    }

    /// <summary>The workers whose results this step used, none of them late or wrong.</summary>
    private List<IActorRef> Delivered() =>
        _nodes.Values.Select(n => n.ComputedBy).OfType<IActorRef>().Distinct().Where(w => !_faulted.Contains(w) && !_convicted.Contains(w)).ToList();

    private void Reject(Node node, IActorRef worker, string what)
    {
        _log.Warning("step {0}: rejecting a result {1} from {2}; recomputing elsewhere", _plan.Number, what, worker.Path);
        Fault(worker, $"its result for step {_plan.Number} was refused");
        if (node.AssignedTo.Count == 0) Assign(node, exclude: worker);
    }

    private void HandleVersionMismatch(VersionMismatch mismatch)
    {
        var worker = Sender;
        _log.Warning("worker {0} holds version {1}, not {2}; sending the weights again", worker.Path, mismatch.HeldVersion, mismatch.RequestedVersion);
        _holdWeights.Remove(worker);
        if (_nodes.TryGetValue((mismatch.NodeStart, mismatch.NodeSize), out var node) && node.Result is null && node.AssignedTo.Remove(worker))
        {
            Release(worker);
            node.AskedOf.Remove(worker);
            Assign(node, exclude: null);
        }
    }

    private void Release(IActorRef worker)
    {
        if (_busy.TryGetValue(worker, out var busy)) _busy[worker] = busy - 1;
    }

    /// <summary>A worker became ready: nodes waiting for a worker go to it.</summary>
    private void Join(IActorRef worker)
    {
        if (_ready.Contains(worker)) return;
        _ready.Add(worker);
        var waiting = _nodes.Values.Where(n => n.Result is null && n.AssignedTo.Count == 0).ToList();
        foreach (var node in waiting) Assign(node, exclude: null);
        if (waiting.Count > 0) Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
    }

    /// <summary>A worker is gone: it holds nothing any more, and its open nodes go to the others.</summary>
    private void Leave(IActorRef worker)
    {
        _ready.Remove(worker);
        _holdWeights.Remove(worker); // what was on its way may be lost
        _busy.Remove(worker);
        var orphans = _nodes.Values.Where(n => n.Result is null && n.AssignedTo.Remove(worker)).ToList();
        if (orphans.Count > 0) _log.Info("step {0}: moving {1} of the nodes of {2}", _plan.Number, orphans.Count, worker.Path);
        foreach (var node in orphans.Where(n => n.AssignedTo.Count == 0))
        {
            if (node.Candidates.Count == 0) Assign(node, exclude: worker);
            else if (!AssignOther(node))
            {
                // Its verifier is gone and no other is left: take the result there is.
                var (by, sum) = node.Candidates[0];
                _pool.Return(node.Candidates.Skip(1).Select(c => c.Sum));
                node.Candidates.Clear();
                Settle(node, by, sum);
            }
        }
    }

    private void HandleDeadline()
    {
        if (_allReduce is not null) LateChecks();
        if (_answered || _allReduce is not null && LaggardsAtDeadline()) return;
        var late = _nodes.Values.Where(n => n.Result is null && n.Scalars is null).ToList();
        foreach (var node in late)
        {
            _log.Warning("step {0}: chunks [{1}, {2}) missed the {3:0.###} s deadline on {4}; giving them to another worker",
                _plan.Number, node.Start, node.Start + node.Size, _settings.StepDeadline.TotalSeconds, string.Join(", ", node.AssignedTo.Select(w => w.Path.ToString())));
            foreach (var worker in node.AssignedTo) Fault(worker, $"missed the {_settings.StepDeadline.TotalSeconds:0.###} s deadline of step {_plan.Number}");
        }
        if (_allReduce is not null && LateParticipants(late)) late = [];
        foreach (var node in late.Where(n => n.Result is null && n.Scalars is null && n.AssignedTo.Count > 0))
        {
            if (node.Candidates.Count > 0) AssignOther(node);
            else Assign(node, exclude: node.AssignedTo.FirstOrDefault());
        }
        Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
    }

    /// <summary>All nodes are in: add them along the chunk tree, hand the sum and the pool back, and stop.</summary>
    private void Complete()
    {
        var reducing = Stopwatch.GetTimestamp();
        var sums = _nodes.ToDictionary(p => p.Key, p => p.Value.Result!);
        var root = ChunkTree.Reduce(_plan.ChunkCount, sums, (left, right) =>
        {
            left.Add(right);
            return left;
        });
        _pool.Return(sums.Values);
        _answered = true;
        _coordinator.Tell(new StepGathered(_plan.Number, root, _pool, Stopwatch.GetElapsedTime(_started).TotalSeconds, _slowestCompute,
            Stopwatch.GetElapsedTime(reducing).TotalSeconds) { Delivered = Delivered() });
        Context.Stop(Self);
    }

    private void Fail(string reason)
    {
        _answered = true;
        _coordinator.Tell(new StepFailed(_plan.Number, reason));
        Context.Stop(Self);
    }

    /// <summary>A node of the step's chunk tree: chunks [Start, Start + Size), the samples they hold, who computes it.</summary>
    private sealed class Node(int start, int size, int sampleStart, int sampleCount, IActorRef? preferred)
    {
        public int Start { get; } = start;
        public int Size { get; } = size;
        public int SampleStart { get; } = sampleStart;
        public int SampleCount { get; } = sampleCount;
        public IActorRef? Preferred { get; } = preferred;
        public List<IActorRef> AssignedTo { get; } = [];
        /// <summary>Every worker this node was given to in this step: only they may answer for it.</summary>
        public HashSet<IActorRef> AskedOf { get; } = [];
        public int Attempts { get; set; }
        /// <summary>The node's sum, once settled (verified, if <see cref="Verify"/>).</summary>
        public GradientSum? Result { get; set; }
        /// <summary>Two workers compute this node, and their bits must agree.</summary>
        public bool Verify { get; set; }
        /// <summary>Results of a verified node not yet matched by another worker's.</summary>
        public List<(IActorRef Worker, GradientSum Sum)> Candidates { get; } = [];
        /// <summary>All-reduce: the node's count, cost and correct count.</summary>
        public NodeTotals? Scalars { get; set; }
        /// <summary>Who computed the settled result (all-reduce: and holds its sum).</summary>
        public IActorRef? ComputedBy { get; set; }
        /// <summary>All-reduce: the check of this node's parts under way, or passed.</summary>
        public Check? Check { get; set; }
    }

    private sealed class Deadline
    {
        public const string Key = "deadline";
        public static readonly Deadline Instance = new();
    }
}
