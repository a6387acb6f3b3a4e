using System.IO.Hashing;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Event;
using Backprop.Channel;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Worker;

/// <summary>
/// The worker's side of the all-reduce (<see cref="ReduceMode.AllReduce"/>): a replica of the
/// weights and the optimizer, the segments it owns, and the step being added up.
/// </summary>
/// <remarks>
/// <para>
/// For step n the coordinator sends a <see cref="StepLayout"/> (the step's nodes, its participants,
/// the owner of each segment), then requests. A node's sum is kept here until the next step and its
/// segments go to their owners (<see cref="FrameKind.Part"/>). An owner that has the segment of every
/// node adds them in the fixed chunk-tree order, so that the bits depend neither on who computed
/// what nor on the order of arrival, and sends the result to every participant
/// (<see cref="FrameKind.Sum"/>). A worker holding every segment reports <see cref="StepReduced"/>.
/// </para>
/// <para>
/// The update is applied when the next step's layout comes (or when the state is asked for), not
/// when the last segment arrives: until the coordinator moves on, every participant still holds the
/// weights of version n and the step's node sums, so a participant lost in the middle of the step
/// costs nothing but recomputation: its nodes are computed again elsewhere, its segments get new
/// owners (a new revision of the layout) to which the node sums are sent again.
/// </para>
/// </remarks>
public sealed partial class GradientWorker
{
    private const int MaximumEarlyFrames = 4096;

    private readonly Action<long, float[]>? _perturbReplica;   // tests only: corrupts a replica after an update
    private readonly WorkerFault? _fault;                      // tests only: BACKPROP_FAULT
    private readonly List<TensorArrived> _early = [];          // frames of a step whose layout has not come yet
    private float[]? _replica;
    private Optimizer? _optimizer;
    private long _replicaVersion = -1;
    private ReduceStep? _step;
    private (long Version, ulong Hash)? _stateHash;

    private bool AllReduce => _setup?.Reduce == ReduceMode.AllReduce;
    private string Me => _channel!.Endpoint;
    private int ParameterCount => _engine!.Architecture.ParameterCount;

    /// <summary>Sets up the replica for an all-reduce run (after the common checks of the setup).</summary>
    private string? SetUpReplica(SetupRun setup)
    {
        ReleaseStep();
        _early.ForEach(f => _channel?.Pool.Return(f.Payload));
        _early.Clear();
        (_replica, _optimizer, _replicaVersion, _stateHash) = (null, null, -1, null);
        if (setup.Reduce != ReduceMode.AllReduce) return null;
        if (_channel is null || setup.TensorEndpoint is null) return "all-reduce needs a tensor channel on every node";
        if (setup.Optimizer is null) return "an all-reduce run must name its optimizer";
        try
        {
            _optimizer = Optimizer.Create(_engine!.Architecture, setup.Optimizer);
        }
        catch (ArgumentException e)
        {
            return $"invalid optimizer: {e.Message}";
        }
        _replica = new float[ParameterCount];
        _channel.MaximumValues = ParameterCount * (1 + _optimizer.State.Count);
        return null;
    }

    private void HandleLayout(StepLayout layout)
    {
        if (!AllReduce || layout.RunId != _runId) return;
        if (_step is { } current && current.Number == layout.Step)
        {
            if (layout.Revision <= current.Layout.Revision || layout.Round < current.Round) return;
            if (layout.Round > current.Round)
            {
                // The step starts over (a participant sent wrong parts): nothing of the earlier round is kept.
                _log.Warning("step {0}: starting the step over (round {1})", layout.Step, layout.Round);
                ReleaseStep();
            }
            else if (layout.SegmentOwners.Length == current.SegmentCount)
            {
                Revise(current, layout);
                // The coordinator may have set this worker aside and taken it back: say again that the sum is here.
                if (current.Reported) _runOwner.Tell(new StepReduced(layout.RunId, current.Number, false, 0, current.Round));
                return;
            }
            else ReleaseStep(); // the step starts over with other segments (the replica has not moved)
        }
        if (_step is { } newer && newer.Number > layout.Step || _step is null && _replicaVersion > layout.Step) return; // stale
        if (_step is { } previous)
        {
            if (previous.Number == layout.Step - 1 && previous.Complete) Apply(previous);
            else _replicaVersion = -1; // the previous step never completed here: this replica is behind
            ReleaseStep();
        }
        if (!ValidLayout(layout)) return;
        var step = _step = new ReduceStep(layout, _channel!.Pool.Rent(ParameterCount));
        for (var s = 0; s < layout.SegmentOwners.Length; s++)
        {
            if (step.Owner(s) == Me) step.Owned[s] = [];
        }
        if (_replicaVersion != layout.Step && !layout.AwaitingState.Contains(Me))
        {
            _log.Warning("step {0}: holding weights version {1}; asking for the state", layout.Step, _replicaVersion);
            _runOwner.Tell(new NeedState(layout.RunId, layout.Step, _replicaVersion));
        }
        // Frames that came before the layout (a state of this step whatever its round).
        bool Current(FrameHeader h) => h.Step == layout.Step && (h.Kind == FrameKind.State || h.Round == layout.Round);
        bool Later(FrameHeader h) => h.Step > layout.Step || h.Step == layout.Step && h.Round > layout.Round;
        var early = _early.Where(f => Current(f.Header)).ToList();
        _early.RemoveAll(f =>
        {
            if (Later(f.Header)) return false;
            if (!Current(f.Header)) _channel.Pool.Return(f.Payload);
            return true;
        });
        foreach (var frame in early) HandleReduceFrame(frame);
    }

    private bool ValidLayout(StepLayout layout)
    {
        var segments = layout.SegmentOwners.Length;
        if (segments < 1 || segments > ParameterCount || layout.NodeStarts.Length != layout.NodeSizes.Length || layout.NodeStarts.Length == 0
            || layout.SegmentOwners.Any(o => o < 0 || o >= layout.Participants.Length) || layout.SampleCount < 1)
        {
            _log.Error("step {0}: ignoring a malformed layout ({1} segments, {2} nodes, {3} participants)", layout.Step, segments, layout.NodeStarts.Length, layout.Participants.Length);
            return false;
        }
        return true;
    }

    /// <summary>A participant was lost: its segments have new owners, to which the node sums held here go again.</summary>
    private void Revise(ReduceStep step, StepLayout layout)
    {
        if (!ValidLayout(layout) || layout.SegmentOwners.Length != step.SegmentCount) return;
        var before = Enumerable.Range(0, step.SegmentCount).Select(step.Owner).ToArray();
        step.Layout = layout;
        for (var s = 0; s < step.SegmentCount; s++)
        {
            if (step.Owner(s) == before[s]) continue;
            if (step.Owner(s) == Me && step.Owned.TryAdd(s, []))
            {
                foreach (var (key, part) in step.Unowned.Where(u => u.Key.Segment == s).ToList())
                {
                    step.Unowned.Remove(key);
                    AddPart(step, s, key.Node, part);
                }
            }
            foreach (var node in step.NodeSums.Keys.ToList()) SendSegment(step, node, s);
        }
    }

    private void HandleComputeAllReduce(ComputeGradient request)
    {
        if (_step is not { } step || request.Step != step.Number)
        {
            _log.Info("step {0}: ignoring a request for chunks [{1}, +{2}) of another step", request.Step, request.NodeStart, request.NodeSize);
            return;
        }
        if (_replicaVersion != step.Number)
        {
            Stash.Stash(); // its state is on its way from a peer
            return;
        }
        if (!RequestInRange(request)) return;
        var node = (request.NodeStart, request.NodeSize);
        if (request.Verify)
        {
            Verify(step, request);
            return;
        }
        if (!step.NodeSums.TryGetValue(node, out var sum))
        {
            sum = TakeSpareSum(ParameterCount);
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            _fault?.BeforeCompute(step.Number);
            _engine!.Gradient(_replica, _data!, _order.AsSpan(request.SampleStart, request.SampleCount), sum);
            _fault?.AfterCompute(step.Number, sum);
            step.ComputeSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
            step.NodeSums[node] = sum;
            for (var s = 0; s < step.SegmentCount; s++) SendSegment(step, node, s);
            _fault?.At(WorkerFault.KillAfterParts, step.Number);
        }
        Sender.Tell(new NodeComputed(request.RunId, request.Step, request.NodeStart, request.NodeSize, sum.SampleCount, sum.LossSum, sum.CorrectCount, step.ComputeSeconds, step.Round));
        _fault?.At(WorkerFault.HangAfterParts, step.Number);
    }

    /// <summary>
    /// Computes a node another worker computed, to check it: the hashes of its segments (and its
    /// totals) go to the coordinator, which compares them with the hashes of the parts the owners got.
    /// </summary>
    private void Verify(ReduceStep step, ComputeGradient request)
    {
        var sum = TakeSpareSum(ParameterCount);
        try
        {
            _fault?.BeforeCompute(step.Number);
            _engine!.Gradient(_replica, _data!, _order.AsSpan(request.SampleStart, request.SampleCount), sum);
            _fault?.AfterCompute(step.Number, sum);
            var segments = Enumerable.Range(0, step.SegmentCount).ToArray();
            var hashes = segments.Select(s =>
            {
                var (start, length) = step.Segment(s, ParameterCount);
                return PartHash(sum.Values.AsSpan(start, length));
            }).ToArray();
            Sender.Tell(new PartHashes(request.RunId, step.Number, step.Round, request.NodeStart, request.NodeSize, Computed: true, segments, hashes,
                sum.SampleCount, sum.LossSum, sum.CorrectCount));
        }
        finally
        {
            _spareSums.Add(sum);
        }
    }

    private static ulong PartHash(ReadOnlySpan<float> values) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(values));

    /// <summary>The hashes of the parts of a node received for the segments this worker owns (those still on their way: when they come).</summary>
    private void HandleHashParts(HashParts request)
    {
        if (!AllReduce || request.RunId != _runId || _step is not { } step || step.Number != request.Step || step.Round != request.Round) return;
        var node = (request.NodeStart, request.NodeSize);
        if (!step.HasNode(node)) return;
        var ready = new List<int>();
        foreach (var (s, parts) in step.Owned)
        {
            if (parts.ContainsKey(node)) ready.Add(s);
            else step.HashesWanted.Add((s, node));
        }
        if (ready.Count > 0) SendPartHashes(step, node, ready);
    }

    private void SendPartHashes(ReduceStep step, (int Start, int Size) node, List<int> segments)
    {
        var hashes = segments.Select(s => PartHash(step.Owned[s][node].Span(step.Segment(s, ParameterCount).Length))).ToArray();
        _runOwner.Tell(new PartHashes(step.Layout.RunId, step.Number, step.Round, node.Start, node.Size, Computed: false, [.. segments], hashes));
    }

    /// <summary>Segment <paramref name="s"/> of the node sum held for <paramref name="node"/> to its owner (this worker included).</summary>
    private void SendSegment(ReduceStep step, (int Start, int Size) node, int s)
    {
        var (start, length) = step.Segment(s, ParameterCount);
        var values = step.NodeSums[node].Values;
        var owner = step.Owner(s);
        if (owner == Me)
        {
            AddPart(step, s, node, new Part(values, start, pooled: false));
            return;
        }
        var header = new FrameHeader(FrameKind.Part, _runGuid, step.Number, step.Number, node.Start, node.Size, Count: length, Segment: s, Round: (ushort)step.Round);
        _channel!.Send(owner, header, values.AsMemory(start, length));
    }

    /// <summary>Part, Sum and State frames of the all-reduce.</summary>
    private void HandleReduceFrame(TensorArrived frame)
    {
        var header = frame.Header;
        var pool = _channel!.Pool;
        if (_step is null || header.Step > _step.Number)
        {
            // Of a step whose layout has not come yet: checked when it has.
            // A state may be any number of steps ahead (this worker fell behind, or has just joined);
            // parts and sums at most two.
            var horizon = _step is null && _replicaVersion < 0 ? long.MaxValue : Math.Max(_replicaVersion, _step?.Number ?? -1) + 2;
            if (_early.Count < MaximumEarlyFrames && (header.Kind == FrameKind.State || header.Step <= horizon)) _early.Add(frame);
            else
            {
                _log.Warning("tensor channel: dropping a {0} frame of step {1} from {2}, too far ahead", header.Kind, header.Step, frame.Peer);
                pool.Return(frame.Payload);
            }
            return;
        }
        var step = _step;
        if (header.Step < step.Number)
        {
            pool.Return(frame.Payload);
            return;
        }
        // Only the step's participants send parts, sums and states; the coordinator sends the first state.
        if (!step.Layout.Participants.Contains(frame.Peer) && !(header.Kind == FrameKind.State && frame.Peer == _setup!.TensorEndpoint))
        {
            _log.Warning("tensor channel: dropping a {0} frame of step {1} from {2}, which is not a participant of the step", header.Kind, header.Step, frame.Peer);
            pool.Return(frame.Payload);
            return;
        }
        if (header.Kind == FrameKind.State)
        {
            LoadState(frame);
            return;
        }
        if (header.Round != step.Round)
        {
            // Of another round of this step: a later one waits for its layout, an earlier one is void.
            if (header.Round > step.Round && _early.Count < MaximumEarlyFrames) _early.Add(frame);
            else pool.Return(frame.Payload);
            return;
        }
        if (header.Segment < 0 || header.Segment >= step.SegmentCount || header.Count != step.Segment(header.Segment, ParameterCount).Length)
        {
            _log.Warning("tensor channel: dropping a {0} frame of step {1} from {2}: segment {3} of {4} values does not fit the layout", header.Kind, header.Step, frame.Peer, header.Segment, header.Count);
            pool.Return(frame.Payload);
            return;
        }
        if (header.Kind == FrameKind.Part)
        {
            AddPart(step, header.Segment, (header.NodeStart, header.NodeSize), new Part(frame.Payload, 0, pooled: true));
        }
        else
        {
            AddSum(step, header.Segment, frame.Payload);
            pool.Return(frame.Payload);
        }
    }

    /// <summary>One node's part of a segment this worker owns; when every node's is in, the segment is added up and sent to all.</summary>
    private void AddPart(ReduceStep step, int s, (int Start, int Size) node, Part part)
    {
        if (!step.Owned.ContainsKey(s) && step.HasNode(node) && !step.Unowned.ContainsKey((s, node)))
        {
            // A peer that already has the layout's next revision sent it here, the segment's new owner;
            // that revision is on its way: the part waits for it (the peer sends it only once).
            _log.Info("step {0}: keeping a part of segment {1} until the layout names this worker its owner", step.Number, s);
            step.Unowned[(s, node)] = part;
            return;
        }
        if (!step.Owned.TryGetValue(s, out var parts) || step.Reduced.Contains(s) || parts.ContainsKey(node) || !step.HasNode(node))
        {
            part.Return(_channel!.Pool);
            return;
        }
        parts[node] = part;
        if (step.HashesWanted.Remove((s, node))) SendPartHashes(step, node, [s]);
        if (parts.Count < step.Layout.NodeStarts.Length) return;

        // Every node is in: add along the chunk tree (new arrays for partial sums; the parts stay as they are).
        var (_, length) = step.Segment(s, ParameterCount);
        var pool = _channel!.Pool;
        var partials = new List<float[]>();
        var root = ChunkTree.Reduce(step.Layout.ChunkCount, parts, (left, right) =>
        {
            if (!left.IsPartial)
            {
                var copy = pool.Rent(length);
                left.Span(length).CopyTo(copy);
                partials.Add(copy);
                left = new Part(copy, 0, pooled: false) { IsPartial = true };
            }
            GradientSum.AddInPlace(left.Array.AsSpan(0, length), right.Span(length));
            return left;
        });
        float[] result;
        if (root.IsPartial) result = root.Array;
        else
        {
            result = pool.Rent(length);
            root.Span(length).CopyTo(result);
            partials.Add(result);
        }
        foreach (var array in partials.Where(a => !ReferenceEquals(a, result))) pool.Return(array);
        step.Reduced.Add(s); // the parts stay until the step is over: the coordinator may ask for their hashes


        var tensor = FloatTensor.Pooled(result, pool.Return);
        foreach (var participant in step.Layout.Participants)
        {
            if (participant == Me) AddSum(step, s, result);
            else _channel.Send(participant, new FrameHeader(FrameKind.Sum, _runGuid, step.Number, step.Number, Count: length, Segment: s, Round: (ushort)step.Round), tensor);
        }
        tensor.Release();
        _fault?.At(WorkerFault.KillAfterSums, step.Number);
    }

    /// <summary>Segment <paramref name="s"/> of the step's sum; with the last one, the step is reduced here.</summary>
    private void AddSum(ReduceStep step, int s, float[] values)
    {
        if (step.Has[s]) return;
        var (start, length) = step.Segment(s, ParameterCount);
        values.AsSpan(0, length).CopyTo(step.Sum.AsSpan(start, length));
        step.Has[s] = true;
        if (++step.HasCount < step.SegmentCount || step.Reported) return;
        step.Reported = true;
        var hash = _stateHash is { } h && h.Version == step.Number ? h.Hash : (ulong?)null;
        _runOwner.Tell(new StepReduced(step.Layout.RunId, step.Number, hash.HasValue, hash ?? 0, step.Round));
    }

    /// <summary>θ ← update(θ, the step's sum): the same update, on the same bits, on every replica.</summary>
    private void Apply(ReduceStep step)
    {
        _optimizer!.Step(_replica, step.Sum, step.Layout.SampleCount);
        _replicaVersion = step.Number + 1;
        _perturbReplica?.Invoke(_replicaVersion, _replica!);
        _fault?.At(WorkerFault.Perturb, _replicaVersion, _replica);
        HashIfDue();
    }

    private void HashIfDue()
    {
        var every = _setup!.StateCheckEvery;
        if (every > 0 && _replicaVersion % every == 0) _stateHash = (_replicaVersion, StateHash());
    }

    /// <summary>XxHash3 over the weights, the optimizer's state arrays and its step count.</summary>
    private ulong StateHash()
    {
        var hash = new XxHash3();
        hash.Append(MemoryMarshal.AsBytes(_replica.AsSpan()));
        foreach (var array in _optimizer!.State) hash.Append(MemoryMarshal.AsBytes(array.AsSpan()));
        hash.Append(BitConverter.GetBytes(_optimizer.StepCount));
        return hash.GetCurrentHashAsUInt64();
    }

    private void ReleaseStep()
    {
        if (_step is not { } step) return;
        foreach (var sum in step.NodeSums.Values) _spareSums.Add(sum);
        foreach (var parts in step.Owned.Values)
        {
            foreach (var p in parts.Values) p.Return(_channel!.Pool);
        }
        foreach (var p in step.Unowned.Values) p.Return(_channel!.Pool);
        _channel?.Pool.Return(step.Sum);
        _step = null;
    }

    /// <summary>Sends the weights (and the optimizer's state) of the version asked for, applying the last step first if need be.</summary>
    private void HandleSendState(SendState request)
    {
        if (!AllReduce || request.RunId != _runId) return;
        if (_step is { } step && step.Number == request.Version - 1 && step.Complete)
        {
            Apply(step);
            ReleaseStep();
        }
        if (_replicaVersion != request.Version || _step is not null && _step.Number < request.Version)
        {
            _log.Warning("asked for the state of version {0} for {1}, but holding version {2}", request.Version, request.Endpoint, _replicaVersion);
            return;
        }
        var arrays = request.WithOptimizer ? _optimizer!.State : [];
        var count = ParameterCount * (1 + arrays.Count);
        var payload = _channel!.Pool.Rent(count);
        _replica.AsSpan().CopyTo(payload);
        for (var k = 0; k < arrays.Count; k++) arrays[k].AsSpan().CopyTo(payload.AsSpan((k + 1) * ParameterCount));
        var header = new FrameHeader(request.WithOptimizer ? FrameKind.State : FrameKind.Weights, _runGuid, request.Version, request.Version,
            Count: count, Segment: arrays.Count);
        _channel.Send(request.Endpoint, header, payload, () => _channel.Pool.Return(payload));
    }

    /// <summary>A peer's (or at the start, the coordinator's) weights and optimizer state: this replica starts from them.</summary>
    private void LoadState(TensorArrived frame)
    {
        var header = frame.Header;
        var stateArrays = _optimizer!.State.Count;
        if (header.Segment != stateArrays || header.Count != ParameterCount * (1 + stateArrays) || header.Version != header.Step)
        {
            _log.Error("tensor channel: ignoring a state of {0} values with {1} arrays from {2}; expected {3} arrays", header.Count, header.Segment, frame.Peer, stateArrays);
            _channel!.Pool.Return(frame.Payload);
            return;
        }
        frame.Payload.AsSpan(0, ParameterCount).CopyTo(_replica);
        var state = Enumerable.Range(0, stateArrays).Select(k => frame.Payload.AsSpan((k + 1) * ParameterCount, ParameterCount).ToArray()).ToList();
        _optimizer.Restore(header.Version, state);
        _channel!.Pool.Return(frame.Payload);
        _replicaVersion = header.Version;
        _log.Info("took the state of version {0} from {1}", header.Version, frame.Peer);
        HashIfDue();
        Stash.UnstashAll();
    }

    /// <summary>A node's part of a segment: a received frame's array, or a slice of a node sum held here.</summary>
    private sealed class Part(float[] array, int offset, bool pooled)
    {
        public float[] Array { get; } = array;
        public bool IsPartial { get; init; }
        public ReadOnlySpan<float> Span(int length) => Array.AsSpan(offset, length);
        public void Return(FloatArrayPool pool)
        {
            if (pooled) pool.Return(Array);
        }
    }

    /// <summary>The step being added up here.</summary>
    private sealed class ReduceStep(StepLayout layout, float[] sum)
    {
        private HashSet<(int, int)>? _nodes;

        public StepLayout Layout { get; set; } = layout;
        public long Number => Layout.Step;
        public int Round => Layout.Round;
        /// <summary>Parts whose hashes the coordinator asked for before they came: (segment, node).</summary>
        public HashSet<(int Segment, (int Start, int Size) Node)> HashesWanted { get; } = [];
        public int SegmentCount => Layout.SegmentOwners.Length;
        public Dictionary<(int Start, int Size), GradientSum> NodeSums { get; } = [];
        public Dictionary<int, Dictionary<(int Start, int Size), Part>> Owned { get; } = [];
        public HashSet<int> Reduced { get; } = [];
        public Dictionary<(int Segment, (int Start, int Size) Node), Part> Unowned { get; } = [];
        public float[] Sum { get; } = sum;
        public bool[] Has { get; } = new bool[layout.SegmentOwners.Length];
        public int HasCount { get; set; }
        public bool Reported { get; set; }
        public bool Complete => HasCount == SegmentCount;
        public double ComputeSeconds { get; set; }

        public string Owner(int s) => Layout.Participants[Layout.SegmentOwners[s]];
        public (int Start, int Length) Segment(int s, int parameterCount) => StepLayout.Segment(s, SegmentCount, parameterCount);
        public bool HasNode((int, int) node) => (_nodes ??= Layout.NodeStarts.Zip(Layout.NodeSizes).ToHashSet()).Contains(node);
    }
}
