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

    /// <summary>Every ready worker takes part; segment s is owned by participant s; joiners get the state.</summary>
    private void BeginAllReduce()
    {
        _participants.Clear();
        _participants.AddRange(_ready.Where(_endpoints.ContainsKey));
        if (_participants.Count == 0) return; // waits for a worker (JoinAllReduce)
        // Segments of at most SegmentValues values, dealt out in turn: an owner adds and sends one
        // segment while the parts of the next are still arriving, and large frames do not wait whole.
        var parameters = _plan.ParameterCount;
        var rounds = Math.Max(1, (parameters + _participants.Count * SegmentValues - 1) / (_participants.Count * SegmentValues));
        _owners = [.. Enumerable.Range(0, Math.Min(parameters, _participants.Count * rounds)).Select(s => _participants[s % _participants.Count])];
        foreach (var joiner in _participants.Where(p => !_allReduce!.Holders.Contains(p))) SourceState(joiner);
        if (_answered) return;
        SendLayout();
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
            [.. _awaitingState.Keys.Where(_participants.Contains).Select(p => _endpoints[p])]);
        foreach (var participant in _participants) participant.Tell(layout, _coordinator);
        if (_revision > 0) _log.Info("step {0}: layout revision {1}: {2} participants", _plan.Number, _revision, _participants.Count);
    }

    private void HandleNodeComputed(NodeComputed result)
    {
        var worker = Sender;
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
        CompleteIfReduced();
    }

    private void HandleStepReduced(StepReduced reduced)
    {
        if (!_participants.Contains(Sender)) return;
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
            if (_allReduce!.InitialState is null)
            {
                Fail($"step {_plan.Number}: every worker holding the model was lost; the run cannot go on");
                return;
            }
            foreach (var node in _nodes.Values) (node.Scalars, node.ComputedBy, node.Attempts) = (null, null, 0);
            foreach (var node in _nodes.Values) node.AssignedTo.Clear();
            _awaitingState.Clear();
            return; // the coordinator still holds this version: the step starts again with the next worker
        }
        for (var s = 0; s < _owners.Length; s++)
        {
            if (Equals(_owners[s], worker)) _owners[s] = _participants[s % _participants.Count];
        }
        foreach (var (joiner, _) in _awaitingState.Where(a => Equals(a.Value, worker)).ToList()) SourceState(joiner);
        if (_answered) return;
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
            _log.Warning("step {0}: no participant holds every segment after the {1:0.###} s deadline; waiting for the owners", _plan.Number, _settings.StepDeadline.TotalSeconds);
        }
        Timers.StartSingleTimer(Deadline.Key, Deadline.Instance, _settings.StepDeadline);
        return true;
    }

    /// <summary>Every node's totals are in and every participant holds the sum: check the replicas, add the totals up, answer, stop.</summary>
    private void CompleteIfReduced()
    {
        if (_answered || _participants.Count == 0 || _nodes.Values.Any(n => n.Scalars is null) || _participants.Any(p => !_reducedBy.Contains(p))) return;
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
