using System.Collections.Immutable;
using System.Diagnostics;
using Backprop.Channel;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Actors;

/// <summary>
/// What a step of the all-reduce needs beyond the star's: who already holds the replica of this
/// version, and, before the first step, the coordinator's own state for the workers that do not.
/// </summary>
/// <param name="RunId">The run.</param>
/// <param name="Run">The run's id as the channel's frames carry it.</param>
/// <param name="Holders">Workers that hold (or will hold, once they apply the last step) the weights and optimizer state of this step's version.</param>
/// <param name="InitialState">The coordinator's weights and optimizer state arrays, packed, when it holds this version (before the first step); else null.</param>
/// <param name="StateArrays">The number of optimizer state arrays in a state.</param>
/// <param name="Channel">The coordinator's tensor channel.</param>
internal sealed record AllReducePlan(string RunId, Guid Run, IReadOnlySet<IActorRef> Holders, FloatTensor? InitialState, int StateArrays, TensorChannel Channel);

/// <summary>A node's count, cost and correct count: what the coordinator adds up of it in the all-reduce.</summary>
internal sealed class NodeTotals(int sampleCount, double lossSum, int correctCount)
{
    public int SampleCount { get; private set; } = sampleCount;
    public double LossSum { get; private set; } = lossSum;
    public int CorrectCount { get; private set; } = correctCount;

    /// <summary>this ← this + right, in the order <see cref="ChunkTree.Reduce{T}"/> gives: the same bits as the star's sum.</summary>
    public NodeTotals Add(NodeTotals right)
    {
        SampleCount += right.SampleCount;
        LossSum += right.LossSum;
        CorrectCount += right.CorrectCount;
        return this;
    }
}

/// <summary>
/// The gather of an all-reduce step: the same nodes, assignment, deadlines and moves as the star's,
/// but no tensor reaches the coordinator. The step's participants (every ready worker) get a
/// <see cref="StepLayout"/> naming each segment's owner (the parameter vector is cut into segments
/// of at most <see cref="SegmentValues"/> values, a multiple of the participants, dealt out in turn); a worker that does not hold this version's
/// replica gets it from a peer first. The step is done when every node's totals are in and every
/// participant holds every segment of the sum (<see cref="StepReduced"/>). A participant lost (or
/// needing the state) is removed: its segments get new owners and its nodes are computed again, in
/// a new revision of the layout.
/// </summary>
internal sealed partial class StepGather
{
    /// <summary>The most values a segment holds (256 KiB of floats).</summary>
    internal const int SegmentValues = 1 << 16;

    private readonly AllReducePlan? _allReduce;
    private readonly List<IActorRef> _participants = [];
    private readonly HashSet<IActorRef> _reducedBy = [];
    private readonly Dictionary<IActorRef, ulong> _hashes = [];
    private readonly Dictionary<IActorRef, IActorRef?> _awaitingState = [];   // joiner → the peer sending it the state (null: this coordinator)
    private IActorRef[] _owners = [];
    private int _revision = -1;
    private int _round;   // raised when the step starts over without a worker shown wrong
    private readonly HashSet<IActorRef> _probed = [];   // asked at the last deadline whether they answer; not yet answered
    private const string ProbeId = "step-probe";

    /// <summary>Every ready worker takes part; segment s is owned by participant s; joiners get the state.</summary>
    private void BeginAllReduce()
    {
        _participants.Clear();
        _participants.AddRange(_ready.Where(_endpoints.ContainsKey));
        if (_participants.Count == 0) return; // waits for a worker (JoinAllReduce)
        DealSegments();
        foreach (var joiner in _participants.Where(p => !_allReduce!.Holders.Contains(p))) SourceState(joiner);
        if (_answered) return;
        SendLayout();
    }

    /// <summary>
    /// Segments of at most <see cref="SegmentValues"/> values, dealt out in turn: an owner adds and sends
    /// one segment while the parts of the next are still arriving, and large frames do not wait whole.
    /// </summary>
    private void DealSegments()
    {
        var parameters = _plan.ParameterCount;
        var rounds = Math.Max(1, (parameters + _participants.Count * SegmentValues - 1) / (_participants.Count * SegmentValues));
        _owners = [.. Enumerable.Range(0, Math.Min(parameters, _participants.Count * rounds)).Select(s => _participants[s % _participants.Count])];
    }

    /// <summary>A worker that became ready during the step takes part from the next one, unless this step has no participant yet.</summary>
    private void JoinAllReduce(IActorRef worker)
    {
        if (_participants.Count > 0 || _answered) return;
        if (!_ready.Contains(worker)) _ready.Add(worker);
        BeginAllReduce();
        foreach (var node in _nodes.Values.Where(n => n.Scalars is null && n.AssignedTo.Count == 0)) Assign(node, exclude: null);
        Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
    }

    /// <summary>Has a holder (or, before the first step, the coordinator) send <paramref name="joiner"/> the weights and optimizer state of this version.</summary>
    private void SourceState(IActorRef joiner)
    {
        var plan = _allReduce!;
        var source = _participants.Where(p => plan.Holders.Contains(p) && !Equals(p, joiner)).OrderBy(p => _awaitingState.Values.Count(v => Equals(v, p))).FirstOrDefault();
        var endpoint = _endpoints[joiner];
        if (source is not null)
        {
            source.Tell(new SendState(plan.RunId, _plan.Number, endpoint, WithOptimizer: true), _coordinator);
            _log.Info("step {0}: {1} gets the state from {2}", _plan.Number, joiner.Path, source.Path);
        }
        else if (plan.InitialState is { } state)
        {
            plan.Channel.Send(endpoint, new FrameHeader(FrameKind.State, plan.Run, _plan.Number, _plan.Number, Segment: plan.StateArrays), state);
        }
        else
        {
            Fail($"step {_plan.Number}: no worker holds the weights and optimizer state of version {_plan.Number} any more (every worker that held them was lost), so {joiner.Path} cannot be given them");
            return;
        }
        _awaitingState[joiner] = source;
    }

    /// <summary>Tells every participant the step's layout (a new revision of it).</summary>
    private void SendLayout()
    {
        _revision++;
        var endpoints = _participants.Select(p => _endpoints[p]).ToArray();
        var layout = new StepLayout(_allReduce!.RunId, _plan.Number, _revision, _plan.SampleCount, _plan.ChunkCount,
            [.. _nodes.Keys.Select(k => k.Start)], [.. _nodes.Keys.Select(k => k.Size)], endpoints,
            [.. _owners.Select(o => _participants.IndexOf(o))],
            [.. _awaitingState.Keys.Where(_participants.Contains).Select(p => _endpoints[p])], _round);
        foreach (var participant in _participants) participant.Tell(layout, _coordinator);
        if (_revision > 0) _log.Info("step {0}: layout revision {1}: {2} participants", _plan.Number, _revision, _participants.Count);
        // Owners may have changed: the hashes of parts under check are asked again.
        foreach (var node in _nodes.Values.Where(n => n.Check is { Passed: false }))
        {
            node.Check!.Received.Clear();
            AskHashes(node);
        }
    }

    private void HandleNodeComputed(NodeComputed result)
    {
        var worker = Sender;
        if (result.Round != _round) return; // of a round that was started over
        if (!_nodes.TryGetValue((result.NodeStart, result.NodeSize), out var node) || !_participants.Contains(worker) || !node.AskedOf.Contains(worker))
        {
            _log.Warning("step {0}: dropping totals for chunks [{1}, +{2}) from {3}, which were not asked of it", _plan.Number, result.NodeStart, result.NodeSize, worker.Path);
            return;
        }
        if (node.AssignedTo.Remove(worker)) Release(worker);
        if (node.Scalars is not null) return; // a duplicate: the same bits
        if (result.SampleCount != node.SampleCount || !double.IsFinite(result.LossSum))
        {
            Reject(node, worker, $"of the wrong shape or not finite ({result.SampleCount} samples, expected {node.SampleCount}; cost {result.LossSum})");
            return;
        }
        node.Scalars = new NodeTotals(result.SampleCount, result.LossSum, result.CorrectCount);
        node.ComputedBy = worker;
        _slowestCompute = Math.Max(_slowestCompute, result.ComputeSeconds);
        if (_settings.VerifyFraction > 0 && _participants.Count > 1 && _random.NextDouble() < _settings.VerifyFraction) StartCheck(node);
        CompleteIfReduced();
    }

    // ---- Verification ---------------------------------------------------------------------------
    // The parts of a node went from the worker that computed it straight to the segments' owners, so
    // the coordinator checks what the owners received: after the node is computed (the worker cannot
    // know beforehand which nodes are checked), another participant computes it again and answers
    // with the hashes of its segments, and every owner answers with the hashes of the parts it got.
    // Different bits go to a third participant; the worker found wrong is convicted and the step
    // starts over without it (a new round), because its parts are already in the owners' sums.

    /// <summary>Has another participant compute <paramref name="node"/> again, and the owners hash the parts they got.</summary>
    private void StartCheck(Node node)
    {
        var verifier = LeastBusy(w => _participants.Contains(w) && !Equals(w, node.ComputedBy));
        if (verifier is null) return;
        node.Check = new Check(node.ComputedBy!, verifier);
        AskToVerify(node, verifier);
        AskHashes(node);
    }

    private void AskToVerify(Node node, IActorRef worker) => worker.Tell(Request(node, verify: true), _coordinator);

    private void AskHashes(Node node)
    {
        var ask = new HashParts(_allReduce!.RunId, _plan.Number, _round, node.Start, node.Size);
        foreach (var participant in _participants) participant.Tell(ask, _coordinator);
    }

    private void HandlePartHashes(PartHashes hashes)
    {
        var worker = Sender;
        if (hashes.Round != _round || !_participants.Contains(worker) || !_nodes.TryGetValue((hashes.NodeStart, hashes.NodeSize), out var node)
            || node.Check is not { Passed: false } check || hashes.Segments.Length != hashes.Hashes.Length)
            return;
        if (hashes.Computed)
        {
            if ((Equals(worker, check.Verifier) || Equals(worker, check.Decider)) && hashes.Segments.Length == _owners.Length)
                check.Computed[worker] = hashes;
        }
        else
        {
            for (var i = 0; i < hashes.Segments.Length; i++)
            {
                var s = hashes.Segments[i];
                if (s >= 0 && s < _owners.Length && Equals(_owners[s], worker)) check.Received[s] = hashes.Hashes[i];
            }
        }
        Judge(node, check);
    }

    /// <summary>Once the owners' hashes and a second computation are in: agreement passes the node; a disagreement goes to a third participant, whose bits decide.</summary>
    private void Judge(Node node, Check check)
    {
        if (check.Received.Count < _owners.Length || !check.Computed.TryGetValue(check.Verifier, out var verifier)) return;
        // What the owners got from the worker that computed the node, with the totals it reported.
        var sent = new PartHashes(_allReduce!.RunId, _plan.Number, _round, node.Start, node.Size, Computed: true, [.. Enumerable.Range(0, _owners.Length)],
            [.. Enumerable.Range(0, _owners.Length).Select(s => check.Received[s])], node.Scalars!.SampleCount, node.Scalars.LossSum, node.Scalars.CorrectCount);
        bool AsReceived(PartHashes h) => Same(h, sent);
        static bool Same(PartHashes a, PartHashes b) => a.Hashes.SequenceEqual(b.Hashes) && a.SampleCount == b.SampleCount
            && BitConverter.DoubleToInt64Bits(a.LossSum) == BitConverter.DoubleToInt64Bits(b.LossSum) && a.CorrectCount == b.CorrectCount;
        var chunks = $"chunks [{node.Start}, {node.Start + node.Size}) of step {_plan.Number}";
        if (AsReceived(verifier))
        {
            check.Passed = true;
            _log.Debug("step {0}: {1} verified: {2} computed what {3} sent", _plan.Number, chunks, check.Verifier.Path, check.Primary.Path);
            CompleteIfReduced();
            return;
        }
        if (check.Decider is null)
        {
            var decider = LeastBusy(w => _participants.Contains(w) && !Equals(w, check.Primary) && !Equals(w, check.Verifier));
            if (decider is null)
            {
                Fail($"step {_plan.Number}: {check.Primary.Path} sent parts of {chunks} that {check.Verifier.Path} computes differently, and no third worker is left to decide");
                return;
            }
            _log.Warning("step {0}: {1} sent parts of {2} that {3} computes differently; asking {4} to decide", _plan.Number, check.Primary.Path, chunks, check.Verifier.Path, decider.Path);
            check.Decider = decider;
            AskToVerify(node, decider);
            return;
        }
        if (!check.Computed.TryGetValue(check.Decider, out var decided)) return;
        if (Same(decided, verifier))
            Convict(check.Primary, $"the parts of {chunks} it sent differ from what {check.Verifier.Path} and {check.Decider.Path} both computed");
        else if (AsReceived(decided))
            Convict(check.Verifier, $"it computed {chunks} differently from {check.Primary.Path} and {check.Decider.Path}, who agree");
        else
            Fail($"step {_plan.Number}: {check.Primary.Path}, {check.Verifier.Path} and {check.Decider.Path} give three different results for {chunks}");
    }

    /// <summary>
    /// Starts the step over without <paramref name="convicted"/>, whose parts are in the owners' sums:
    /// a new round of the layout, among the others, and every node computed again.
    /// </summary>
    private void StartOver(IActorRef convicted)
    {
        _round++;
        _ready.Remove(convicted);
        _participants.Remove(convicted);
        _awaitingState.Remove(convicted);
        _reducedBy.Clear();
        _hashes.Clear();
        _busy.Clear();
        foreach (var node in _nodes.Values)
        {
            (node.Scalars, node.ComputedBy, node.Check, node.Attempts) = (null, null, null, 0);
            node.AssignedTo.Clear();
            node.AskedOf.Clear();
        }
        if (_participants.Count == 0)
        {
            Fail($"step {_plan.Number}: no worker is left after setting aside {convicted.Path}");
            return;
        }
        _log.Warning("step {0}: starting the step over (round {1}) with the {2} other participants", _plan.Number, _round, _participants.Count);
        DealSegments();
        foreach (var (joiner, _) in _awaitingState.Where(a => Equals(a.Value, convicted)).ToList()) SourceState(joiner);
        if (_answered) return;
        SendLayout();
        foreach (var node in _nodes.Values) Assign(node, exclude: convicted);
    }

    /// <summary>At the deadline: a check whose second (or third) computation has not come is given up, with a strike for the late one.</summary>
    private void LateChecks()
    {
        foreach (var node in _nodes.Values.Where(n => n.Check is { Passed: false }))
        {
            var check = node.Check!;
            var late = new[] { check.Verifier, check.Decider }.OfType<IActorRef>().Where(w => !check.Computed.ContainsKey(w)).ToList();
            if (late.Count == 0) continue;
            foreach (var worker in late) Fault(worker, $"did not verify chunks [{node.Start}, {node.Start + node.Size}) of step {_plan.Number} within the {_settings.StepDeadline.TotalSeconds:0.###} s deadline");
            _log.Warning("step {0}: giving up the check of chunks [{1}, {2})", _plan.Number, node.Start, node.Start + node.Size);
            node.Check = null;
        }
        CompleteIfReduced();
    }

    /// <summary>A node under check: who computed it, who computes it again, who decides, and the hashes so far.</summary>
    private sealed class Check(IActorRef primary, IActorRef verifier)
    {
        public IActorRef Primary { get; } = primary;
        public IActorRef Verifier { get; } = verifier;
        public IActorRef? Decider { get; set; }
        public Dictionary<int, ulong> Received { get; } = [];
        public Dictionary<IActorRef, PartHashes> Computed { get; } = [];
        public bool Passed { get; set; }
    }

    private void HandleStepReduced(StepReduced reduced)
    {
        if (!_participants.Contains(Sender) || reduced.Round != _round) return;
        _reducedBy.Add(Sender);
        if (reduced.HasStateHash) _hashes[Sender] = reduced.StateHash;
        CompleteIfReduced();
    }

    /// <summary>
    /// A participant is gone (lost, or without the state): its segments go to the others, the nodes
    /// it computed or was computing are computed again, and the joiners it was to give the state get
    /// it from another.
    /// </summary>
    private void RemoveParticipant(IActorRef worker, string why)
    {
        _ready.Remove(worker);
        _busy.Remove(worker);
        if (!_participants.Remove(worker) || _answered) return;
        _reducedBy.Remove(worker);
        _hashes.Remove(worker);
        _awaitingState.Remove(worker);
        _log.Warning("step {0}: participant {1} {2}; its segments and nodes go to the {3} others", _plan.Number, worker.Path, why, _participants.Count);
        if (_participants.Count == 0)
        {
            // The step starts again with the next worker: the coordinator still holds this version
            // before the first step; after it, a worker that held the replica may come back (one whose
            // connection dropped for a moment), and one that did not cannot be given it (SourceState fails).
            if (_allReduce!.InitialState is null)
                _log.Warning("step {0}: every worker holding the weights of version {0} is away; waiting for one of them to come back", _plan.Number);
            foreach (var node in _nodes.Values) (node.Scalars, node.ComputedBy, node.Attempts, node.Check) = (null, null, 0, null);
            foreach (var node in _nodes.Values) node.AssignedTo.Clear();
            _awaitingState.Clear();
            return;
        }
        for (var s = 0; s < _owners.Length; s++)
        {
            if (Equals(_owners[s], worker)) _owners[s] = _participants[s % _participants.Count];
        }
        foreach (var (joiner, _) in _awaitingState.Where(a => Equals(a.Value, worker)).ToList()) SourceState(joiner);
        if (_answered) return;
        foreach (var node in _nodes.Values.Where(n => n.Check is { } c && (Equals(c.Primary, worker) || Equals(c.Verifier, worker) || Equals(c.Decider, worker))))
            node.Check = null;
        var orphans = _nodes.Values.Where(n => n.AssignedTo.Remove(worker) || Equals(n.ComputedBy, worker)).ToList();
        foreach (var node in orphans.Where(n => Equals(n.ComputedBy, worker))) (node.Scalars, node.ComputedBy) = (null, null);
        SendLayout(); // before the requests, so that the new owners are known when the parts come
        foreach (var node in orphans.Where(n => n.Scalars is null && n.AssignedTo.Count == 0)) Assign(node, exclude: worker);
        CompleteIfReduced();
    }

    /// <summary>
    /// At the deadline: participants computing a node that missed it leave the step (their segments
    /// get new owners, their nodes go to others), as long as a punctual participant is left. A
    /// participant whose computation hangs would otherwise hold back the segments it owns for good.
    /// </summary>
    /// <returns>Whether they left (and their nodes went to others).</returns>
    private bool LateParticipants(IReadOnlyCollection<Node> late)
    {
        var lateWorkers = late.SelectMany(n => n.AssignedTo).Distinct().ToList();
        if (lateWorkers.Count == 0 || lateWorkers.Any(w => !_participants.Contains(w)) || lateWorkers.Count >= _participants.Count) return false;
        foreach (var worker in lateWorkers) RemoveParticipant(worker, $"missed the {_settings.StepDeadline.TotalSeconds:0.###} s deadline");
        return true;
    }

    /// <summary>
    /// At the deadline, with every node computed: participants that still lack a segment while
    /// others have them all are removed (their replicas are behind; they get the state again).
    /// Returns true when the deadline was handled here.
    /// </summary>
    private bool LaggardsAtDeadline()
    {
        if (_nodes.Values.Any(n => n.Scalars is null)) return false;
        var laggards = _participants.Where(p => !_reducedBy.Contains(p)).ToList();
        if (laggards.Count > 0 && _reducedBy.Count > 0)
        {
            foreach (var laggard in laggards) RemoveParticipant(laggard, $"does not hold the step's sum after the {_settings.StepDeadline.TotalSeconds:0.###} s deadline");
        }
        else
        {
            _log.Warning("step {0}: no participant holds every segment after the {1:0.###} s deadline; asking the participants whether they still answer", _plan.Number, _settings.StepDeadline.TotalSeconds);
            ProbeParticipants();
        }
        Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
        return true;
    }

    /// <summary>
    /// No owner has sent every segment: some participant holds its segments back. One that has not
    /// answered the previous deadline's <see cref="Identify"/> (its actor does not take messages: a
    /// computation or an addition that does not return) leaves the step with a strike, and its segments
    /// get new owners; then every participant is asked again.
    /// </summary>
    private void ProbeParticipants()
    {
        var silent = _probed.Where(_participants.Contains).ToList();
        if (silent.Count > 0 && silent.Count < _participants.Count)
        {
            foreach (var worker in silent)
            {
                Fault(worker, $"did not answer within the {_settings.StepDeadline.TotalSeconds:0.###} s deadline of step {_plan.Number}");
                RemoveParticipant(worker, "does not answer");
            }
        }
        _probed.Clear();
        if (_answered) return;
        foreach (var participant in _participants)
        {
            _probed.Add(participant);
            participant.Tell(new Identify(ProbeId), Self);
        }
    }

    private void HandleIdentity(ActorIdentity identity)
    {
        if (Equals(identity.MessageId, ProbeId) && identity.Subject is { } subject) _probed.Remove(subject);
    }

    /// <summary>Every node's totals are in and every participant holds the sum: check the replicas, add the totals up, answer, stop.</summary>
    private void CompleteIfReduced()
    {
        if (_answered || _participants.Count == 0 || _nodes.Values.Any(n => n.Scalars is null || n.Check is { Passed: false }) || _participants.Any(p => !_reducedBy.Contains(p))) return;
        if (_hashes.Values.Distinct().Count() > 1)
        {
            var agreed = _hashes.GroupBy(h => h.Value).OrderByDescending(g => g.Count()).First();
            var odd = _hashes.Where(h => h.Value != agreed.Key).Select(h => $"{h.Key.Path} ({h.Value:x16})");
            Fail($"step {_plan.Number}: the replicas differ: the weights and optimizer state of {string.Join(", ", odd)} do not match those of " +
                 $"{string.Join(", ", agreed.Select(h => h.Key.Path.ToString()))} ({agreed.Key:x16})");
            return;
        }
        var totals = ChunkTree.Reduce(_plan.ChunkCount, _nodes.ToDictionary(p => p.Key, p => p.Value.Scalars!), (left, right) => left.Add(right));
        _answered = true;
        _coordinator.Tell(new StepAllReduced(_plan.Number, totals.SampleCount, totals.LossSum, totals.CorrectCount, [.. _participants],
            Stopwatch.GetElapsedTime(_started).TotalSeconds, _slowestCompute) { Delivered = Delivered() });
        Context.Stop(Self);
    }
}
