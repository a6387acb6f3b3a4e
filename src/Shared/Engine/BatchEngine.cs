using System.Diagnostics;
using System.Numerics;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Engine;

/// <summary>
/// Backpropagation in matrix form over a whole shard of samples, in float32: the engine training
/// uses. One instance per network shape; its buffers are allocated on first use and reused, so a
/// steady-state <see cref="Gradient"/> call allocates nothing.
/// </summary>
/// <remarks>
/// For a block of r samples (shapes in comments are rows × columns):
/// o_0 = X (r × n_0, read in place from the data set through the sample indices);
/// o_{l+1} = f(o_l · W_lᵀ + b_l) (r × n_{l+1}); Δ_L = output error (r × n_L);
/// ∂C/∂W_l = Δ_lᵀ · o_l (n_{l+1} × n_l), ∂C/∂b_l = Σ_rows Δ_l; Δ_{l−1} = (Δ_l · W_l) ⊙ f'(o_l).
///
/// The samples are cut into chunks of <see cref="ChunkSize"/>; each chunk's gradient is a sum from zero
/// over its samples in order, and chunk gradients are added along the binary tree of
/// <see cref="ChunkTree"/>. The weight-gradient GEMM does this per micro-tile in registers
/// (<see cref="Kernels.TreeTile"/>); a shard longer than one block (<see cref="BlockRows"/> samples,
/// an aligned power of two of chunks, so a block is a node of that tree) adds the block sums along
/// the same tree. A sample's forward and backward values do not depend on its position, the shard
/// size or the thread count (see <see cref="Kernels"/>), so a chunk's gradient is the same bits
/// wherever it is computed, and shard sums reduce to the whole batch's bits.
///
/// Threads: every phase (a layer's GEMM, the output rows, a layer's gradients) is split over the
/// members of a <see cref="WorkerTeam"/> by output tiles, never over the sample sum; members meet at a
/// barrier between phases. Not thread-safe: one call at a time per engine.
/// </remarks>
public sealed unsafe class BatchEngine
{
    /// <summary>A block holds the largest power of two of chunks that fits this many samples (at least one chunk).</summary>
    internal const int DefaultTargetBlockRows = 256;

    private readonly Architecture _architecture;
    private readonly int _width;                       // micro-tile columns: 16 (AVX2) or 8 (portable)
    private readonly PinnedBuffer[] _forwardPanels;    // W_lᵀ packed (n_l × n_{l+1}), panel by panel
    private readonly PinnedBuffer[] _backwardPanels;   // W_l packed (n_{l+1} × n_l), l ≥ 1
    private readonly PinnedBuffer[] _outputs;          // o_l: rows × n_l, l = 1 … L (o_0 is the data)
    private readonly PinnedBuffer[] _deltas;           // Δ_l: rows × n_{l+1}, l = 0 … L − 1
    private readonly PinnedBuffer _deltaTiles = new(); // Δ_lᵀ packed as 6-row tiles, one layer at a time
    private readonly MemberScratch[] _scratch;         // per team member
    private readonly Action<int> _blockJob;
    private readonly double[] _lossSums = new double[32];   // the chunk tree of the loss sum, one slot per level
    private readonly PinnedBuffer _blockSums = new();       // the chunk tree above blocks: a gradient sum per level
    private float[] _rowLoss = [];                     // C(x) per row of the block
    private bool[] _rowCorrect = [];
    private int[] _rowLabels = [];                     // the block's labels, gathered before its forward pass
    private int _capacityRows;
    private WorkerTeam? _team;
    private PhaseTimes? _phases;

    // The block being computed, read by every member.
    private DataSet? _data;
    private float* _parameters, _inputs, _target;
    private int* _indices;                             // null: samples _first, _first + 1, …
    private int _first, _rows, _members;
    private bool _gradient, _packPending, _packBackward;

    /// <summary>
    /// An engine for <paramref name="architecture"/> that cuts work into chunks of
    /// <paramref name="chunkSize"/> samples and runs on <paramref name="threadCount"/> threads
    /// (default: <see cref="Environment.ProcessorCount"/>).
    /// </summary>
    public BatchEngine(Architecture architecture, int chunkSize, int? threadCount = null)
        : this(architecture, chunkSize, threadCount, Kernels.DefaultWidth, DefaultTargetBlockRows)
    {
    }

    /// <summary>As the public constructor, with the micro-tile width (16 or 8) and the block size chosen (for tests).</summary>
    internal BatchEngine(Architecture architecture, int chunkSize, int? threadCount, int width, int targetBlockRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        var threads = threadCount ?? Environment.ProcessorCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1, nameof(threadCount));
        if (width != Kernels.WideWidth && width != Kernels.PortableWidth) throw new ArgumentOutOfRangeException(nameof(width));
        if (width == Kernels.WideWidth && !Kernels.WideSupported) throw new PlatformNotSupportedException("the 16-wide kernel needs AVX2 and FMA");
        _architecture = architecture;
        ChunkSize = chunkSize;
        ThreadCount = threads;
        _width = width;
        var chunksPerBlock = 1;
        while ((long)chunkSize * chunksPerBlock * 2 <= targetBlockRows) chunksPerBlock *= 2;
        BlockRows = checked(chunkSize * chunksPerBlock);

        var L = architecture.LayerCount;
        _forwardPanels = new PinnedBuffer[L];
        _backwardPanels = new PinnedBuffer[L];
        _outputs = new PinnedBuffer[L + 1];
        _deltas = new PinnedBuffer[L];
        for (var l = 0; l < L; l++)
        {
            _forwardPanels[l] = new PinnedBuffer();
            _backwardPanels[l] = new PinnedBuffer();
            _deltas[l] = new PinnedBuffer();
        }
        for (var l = 0; l <= L; l++) _outputs[l] = new PinnedBuffer();
        _scratch = new MemberScratch[threads];
        var depth = Gemm.StackDepth(BlockRows, chunkSize);
        for (var m = 0; m < threads; m++) _scratch[m] = new MemberScratch(width, depth, architecture.MaxWidth);
        _blockJob = BlockJob;
    }

    /// <summary>The network shape.</summary>
    public Architecture Architecture => _architecture;
    /// <summary>Samples per chunk.</summary>
    public int ChunkSize { get; }
    /// <summary>Threads a call runs on (the caller and ThreadCount − 1 helpers).</summary>
    public int ThreadCount { get; }
    /// <summary>Samples per block: the unit of forward and backward work, an aligned power of two of chunks.</summary>
    public int BlockRows { get; }

    /// <summary>Bytes allocated by the helper threads so far (as of their last jobs): for the allocation tests.</summary>
    internal long HelperAllocatedBytes => _team?.HelperAllocatedBytes ?? 0;

    /// <summary>
    /// <paramref name="result"/> ← Σ over the samples <paramref name="indices"/> of <paramref name="data"/>
    /// of ∂C(x)/∂θ at <paramref name="parameters"/>, added chunk by chunk along the chunk tree.
    /// </summary>
    public void Gradient(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> indices, GradientSum result)
    {
        CheckInputs(parameters, data, indices);
        if (result.Values.Length != _architecture.ParameterCount) throw new ArgumentException("result has the wrong size", nameof(result));
        if (indices.IsEmpty)
        {
            result.Clear();
            return;
        }
        EnsureCapacity(Math.Min(indices.Length, BlockRows));
        var blocks = (indices.Length + BlockRows - 1) / BlockRows;
        var P = _architecture.ParameterCount;
        // A shard of several blocks adds their sums along the chunk tree (each block is a node of it):
        // block b is computed into the slot of the level it waits at.
        if (blocks > 1) _blockSums.Ensure(checked((BitOperations.Log2((uint)blocks) + 1) * P));
        var blockSlots = new FloatRowSlots(_blockSums.Pointer, P, P);
        var lossSlots = new DoubleSlots(_lossSums);
        ChunkTreeCounter blockTree = default, lossTree = default;
        var correct = 0;
        fixed (float* θ = parameters, x = data.Features, g = result.Values)
        fixed (int* index = indices)
        {
            Begin(data, θ, x, index, gradient: true);
            try
            {
                for (var b = 0; b < blocks; b++)
                {
                    _first = b * BlockRows;
                    _rows = Math.Min(BlockRows, indices.Length - _first);
                    _target = blocks == 1 ? g : blockSlots.Pointer(blockTree.Depth);
                    RunBlock();
                    for (var start = 0; start < _rows; start += ChunkSize)
                    {
                        double chunkLoss = 0;
                        for (var r = start; r < Math.Min(start + ChunkSize, _rows); r++)
                        {
                            chunkLoss += _rowLoss[r];
                            if (_rowCorrect[r]) correct++;
                        }
                        _lossSums[lossTree.Depth] = chunkLoss;
                        lossTree.Push(ref lossSlots);
                    }
                    if (blocks > 1) blockTree.Push(ref blockSlots);
                }
                if (blocks > 1)
                {
                    blockTree.Fold(ref blockSlots);
                    blockSlots[0].CopyTo(result.Values);
                }
            }
            finally
            {
                End();
            }
        }
        lossTree.Fold(ref lossSlots);
        result.SampleCount = indices.Length;
        result.LossSum = _lossSums[0];
        result.CorrectCount = correct;
    }

    /// <summary>Σ C(x) and the number of correct predictions over <paramref name="indices"/> (all samples when empty).</summary>
    public (double LossSum, int Correct) Evaluate(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> indices = default)
    {
        CheckInputs(parameters, data, indices);
        var count = indices.IsEmpty ? data.Count : indices.Length;
        if (count == 0) return (0, 0);
        EnsureCapacity(Math.Min(count, BlockRows));
        double loss = 0;
        var correct = 0;
        fixed (float* θ = parameters, x = data.Features)
        fixed (int* index = indices)
        {
            Begin(data, θ, x, index, gradient: false);
            try
            {
                for (_first = 0; _first < count; _first += BlockRows)
                {
                    _rows = Math.Min(BlockRows, count - _first);
                    RunBlock();
                    for (var r = 0; r < _rows; r++)
                    {
                        loss += _rowLoss[r];
                        if (_rowCorrect[r]) correct++;
                    }
                }
            }
            finally
            {
                End();
            }
        }
        return (loss, correct);
    }

    /// <summary>The network outputs for one input row (allocates; for prediction, not training).</summary>
    public float[] Predict(ReadOnlySpan<float> parameters, ReadOnlySpan<float> x)
    {
        if (parameters.Length != _architecture.ParameterCount)
            throw new ArgumentException($"{parameters.Length} parameters for a network of {_architecture.ParameterCount}", nameof(parameters));
        if (x.Length != _architecture.InputSize) throw new ArgumentException($"{x.Length} inputs for a network of {_architecture.InputSize}", nameof(x));
        EnsureCapacity(1);
        var L = _architecture.LayerCount;
        fixed (float* θ = parameters, input = x)
        {
            Begin(null, θ, input, null, gradient: false);
            try
            {
                _first = 0;
                _rows = 1;
                PackWeights(0, 1);
                for (var l = 0; l < L; l++) Forward(l, 0, 1);
            }
            finally
            {
                End();
            }
        }
        var a = _outputs[L].AsSpan()[.._architecture.OutputSize];
        if (_architecture.Output == Activation.Softmax) SoftmaxRow(a);
        else ActivateRow(_architecture.Output, a);
        return a.ToArray();
    }

    private void CheckInputs(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> indices)
    {
        if (parameters.Length != _architecture.ParameterCount)
            throw new ArgumentException($"{parameters.Length} parameters for a network of {_architecture.ParameterCount}", nameof(parameters));
        if (data.FeatureCount != _architecture.InputSize)
            throw new ArgumentException($"{data.Name} has {data.FeatureCount} features, the network {_architecture.InputSize} inputs", nameof(data));
        // The kernels read rows through raw pointers: every index must name a sample.
        foreach (var i in indices)
        {
            if ((uint)i >= (uint)data.Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"{data.Name} has {data.Count} samples");
        }
    }

    private void Begin(DataSet? data, float* parameters, float* inputs, int* indices, bool gradient)
    {
        _data = data;
        _parameters = parameters;
        _inputs = inputs;
        _indices = indices;
        _gradient = gradient;
        _packPending = true;
        _packBackward = gradient;
    }

    private void End()
    {
        // Drop the references and pointers of the call: they are only valid inside it.
        _data = null;
        _parameters = _inputs = _target = null;
        _indices = null;
    }

    /// <summary>Allocates the packed weight panels (once) and grows the row buffers (once) to hold <paramref name="rows"/> rows.</summary>
    private void EnsureCapacity(int rows)
    {
        var L = _architecture.LayerCount;
        for (var l = 0; l < L; l++)
        {
            int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
            _forwardPanels[l].Ensure(Gemm.PanelCount(units, _width) * _width * inputs);
            if (l > 0) _backwardPanels[l].Ensure(Gemm.PanelCount(inputs, _width) * _width * units);
        }
        if (rows <= _capacityRows) return;
        var tileFloats = 0;
        for (var l = 0; l < L; l++)
        {
            _outputs[l + 1].Ensure(rows * _architecture.OutputsOf(l));
            _deltas[l].Ensure(rows * _architecture.OutputsOf(l));
            tileFloats = Math.Max(tileFloats, Gemm.RowTileCount(_architecture.OutputsOf(l)) * Kernels.TileRows * rows);
        }
        _outputs[0].Ensure(0);
        _deltaTiles.Ensure(tileFloats);
        foreach (var scratch in _scratch) scratch.Panel.Ensure(Gemm.GradientPanelFloats(rows, _width));
        _rowLoss = new float[rows];
        _rowCorrect = new bool[rows];
        _rowLabels = new int[rows];
        _capacityRows = rows;
    }

    private void RunBlock()
    {
        GatherLabels();
        if (ThreadCount == 1)
        {
            _members = 1;
            BlockJob(0);
        }
        else
        {
            _team ??= new WorkerTeam(ThreadCount);
            _members = ThreadCount;
            _team.Run(_blockJob);
        }
        _packPending = false;
    }

    private void Barrier()
    {
        if (_members > 1) _team!.Barrier();
    }

    /// <summary>[first, end) of <paramref name="count"/> items for member <paramref name="member"/> of <paramref name="members"/>.</summary>
    private static (int First, int End) Share(int count, int member, int members) =>
        ((int)((long)count * member / members), (int)((long)count * (member + 1) / members));

    /// <summary>
    /// This member's rectangle of the tiles of a block's r × <paramref name="columns"/> output: a share of
    /// the column panels when there are enough to go round, else a share of the row tiles.
    /// </summary>
    private (int FirstPanel, int EndPanel, int FirstRowTile, int EndRowTile) ShareTiles(int columns, int member, int members)
    {
        int panels = Gemm.PanelCount(columns, _width), rowTiles = Gemm.RowTileCount(_rows);
        if (panels >= members)
        {
            var (p0, p1) = Share(panels, member, members);
            return (p0, p1, 0, rowTiles);
        }
        var (r0, r1) = Share(rowTiles, member, members);
        return (0, panels, r0, r1);
    }

    /// <summary>
    /// When set, every call adds the time of its phases to it (see <see cref="PhaseTimes"/>); null (the
    /// default) times nothing. Its layer count must be the architecture's.
    /// </summary>
    public PhaseTimes? Phases
    {
        get => _phases;
        set
        {
            if (value is not null && value.LayerCount != _architecture.LayerCount)
                throw new ArgumentException($"phase times for {value.LayerCount} layers, the network has {_architecture.LayerCount}", nameof(value));
            _phases = value;
        }
    }

    /// <summary>One block, run by every member of the team: forward, output error, backward.</summary>
    private void BlockJob(int member)
    {
        var members = _members;
        var L = _architecture.LayerCount;
        // Member 0 (the calling thread) keeps the phase times, when asked to.
        var clock = member == 0 ? _phases : null;
        var since = clock is null ? 0 : Stopwatch.GetTimestamp();
        if (_packPending)
        {
            PackWeights(member, members);
            Barrier();
            if (clock is not null) since = clock.Add(EnginePhase.PackWeights, 0, since);
        }
        for (var l = 0; l < L; l++)
        {
            Forward(l, member, members);
            Barrier();
            if (clock is not null) since = clock.Add(EnginePhase.Forward, l, since);
        }
        OutputRows(member, members);
        if (!_gradient) return;
        Barrier();
        if (clock is not null) since = clock.Add(EnginePhase.OutputRows, 0, since);
        for (var l = L - 1; l >= 0; l--)
        {
            PackDeltaTiles(l, member, members);
            BiasGradient(l, member, members);
            Barrier();
            if (clock is not null) since = clock.Add(EnginePhase.DeltaTilesAndBias, l, since);
            WeightGradient(l, member, members);
            if (clock is not null) since = clock.Add(EnginePhase.WeightGradient, l, since);
            if (l == 0) break;
            BackwardDeltas(l, member, members);
            Barrier();
            if (clock is not null) since = clock.Add(EnginePhase.BackwardErrors, l, since);
        }
    }

    /// <summary>Packs W_lᵀ (forward) and W_l (backward) into panels: once per call, shared by every block.</summary>
    private void PackWeights(int member, int members)
    {
        var L = _architecture.LayerCount;
        for (var l = 0; l < L; l++)
        {
            int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
            var w = _parameters + _architecture.WeightOffset(l);
            // B = W_lᵀ (inputs × units) for net = o · W_lᵀ.
            var (first, end) = Share(Gemm.PanelCount(units, _width), member, members);
            for (var jr = first; jr < end; jr++)
            {
                Kernels.PackTransposed(w, inputs, inputs, jr * _width, Math.Min(_width, units - jr * _width), _width,
                    _forwardPanels[l].Pointer + jr * inputs * _width);
            }
            if (!_packBackward || l == 0) continue;
            // B = W_l (units × inputs) for Δ_{l−1} = Δ_l · W_l.
            (first, end) = Share(Gemm.PanelCount(inputs, _width), member, members);
            if (first < end)
                Kernels.PackRowPanels(new RowSource(w, inputs), units, inputs, first, end, _width, _backwardPanels[l].Pointer + first * units * _width);
        }
    }

    /// <summary>o_0 for the block: rows of the data set, through the sample indices.</summary>
    private RowSource InputRows()
    {
        var n0 = _architecture.InputSize;
        return _indices != null ? new RowSource(_inputs, n0, _indices + _first) : new RowSource(_inputs + (nint)_first * n0, n0);
    }

    /// <summary>
    /// The block's labels into <see cref="_rowLabels"/>, in one tight loop before the block runs: through
    /// shuffled indices each is a cache miss, and here the misses overlap, where the output layer, reading
    /// them row by row between its exps, met them one at a time (half its time on this machine).
    /// </summary>
    private void GatherLabels()
    {
        var labels = _data!.Labels;
        for (var r = 0; r < _rows; r++) _rowLabels[r] = labels[_indices != null ? _indices[_first + r] : _first + r];
    }

    /// <summary>o_{l+1} ← f(o_l · W_lᵀ + b_l) (r × n_{l+1}); the output layer keeps the nets.</summary>
    private void Forward(int l, int member, int members)
    {
        int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
        var o = l == 0 ? InputRows() : new RowSource(_outputs[l].Pointer, inputs);
        var (p0, p1, r0, r1) = ShareTiles(units, member, members);
        var hidden = l < _architecture.LayerCount - 1;
        Gemm.MultiplyTiles(o, _rows, units, inputs, _forwardPanels[l].Pointer, _width, _outputs[l + 1].Pointer, units,
            _parameters + _architecture.BiasOffset(l), hidden ? TileEpilogue.Activate : TileEpilogue.None, _architecture.Hidden, null, 0,
            p0, p1, r0, r1, _scratch[member].Tile);
    }

    /// <summary>The output layer row by row: a = f(net), C(x), the prediction and (for a gradient) Δ_L (r × n_L).</summary>
    private void OutputRows(int member, int members)
    {
        var L = _architecture.LayerCount;
        var units = _architecture.OutputSize;
        var (first, end) = Share(_rows, member, members);
        for (var r = first; r < end; r++)
        {
            var a = new Span<float>(_outputs[L].Pointer + r * units, units);
            var label = _rowLabels[r];
            _rowLoss[r] = OutputRow(a, label);
            _rowCorrect[r] = Targets.Predict(a) == label;
            if (_gradient) OutputError(a, label, new Span<float>(_deltas[L - 1].Pointer + r * units, units));
        }
    }

    /// <summary>Δ_lᵀ as 6-row tiles (the A operand of the weight gradient).</summary>
    private void PackDeltaTiles(int l, int member, int members)
    {
        var units = _architecture.OutputsOf(l);
        var (first, end) = Share(Gemm.RowTileCount(units), member, members);
        if (first < end)
            Kernels.PackTransposedTiles(_deltas[l].Pointer, units, _rows, units, first, end, _deltaTiles.Pointer + (nint)first * _rows * Kernels.TileRows);
    }

    /// <summary>∂C/∂b_l = Σ_rows Δ_l, chunk by chunk along the chunk tree, for this member's units.</summary>
    private void BiasGradient(int l, int member, int members)
    {
        var units = _architecture.OutputsOf(l);
        var (u0, u1) = Share(units, member, members);
        var count = u1 - u0;
        if (count == 0) return;
        var scratch = _scratch[member];
        var slots = new FloatRowSlots(scratch.BiasStack.Pointer, scratch.BiasStride, count);
        var tree = new ChunkTreeCounter();
        var δ = _deltas[l].Pointer;
        for (var start = 0; start < _rows; start += ChunkSize)
        {
            var chunk = slots[tree.Depth];
            chunk.Clear();
            for (var r = start; r < Math.Min(start + ChunkSize, _rows); r++) GradientSum.AddInPlace(chunk, new ReadOnlySpan<float>(δ + r * units + u0, count));
            tree.Push(ref slots);
        }
        tree.Fold(ref slots);
        slots[0].CopyTo(new Span<float>(_target + _architecture.BiasOffset(l) + u0, count));
    }

    /// <summary>∂C/∂W_l = Δ_lᵀ · o_l (n_{l+1} × n_l) along the chunk tree, for this member's column panels.</summary>
    private void WeightGradient(int l, int member, int members)
    {
        int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
        var o = l == 0 ? InputRows() : new RowSource(_outputs[l].Pointer, inputs);
        var (first, end) = Share(Gemm.PanelCount(inputs, _width), member, members);
        var scratch = _scratch[member];
        Gemm.GradientPanels(_deltaTiles.Pointer, units, o, inputs, _rows, ChunkSize, _width, _target + _architecture.WeightOffset(l), inputs,
            first, end, scratch.Panel.Pointer, scratch.Tile, scratch.TreeStack.Pointer);
    }

    /// <summary>Δ_{l−1} = (Δ_l · W_l) ⊙ f'(o_l) (r × n_l), for this member's tiles.</summary>
    private void BackwardDeltas(int l, int member, int members)
    {
        int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
        var (p0, p1, r0, r1) = ShareTiles(inputs, member, members);
        Gemm.MultiplyTiles(new RowSource(_deltas[l].Pointer, units), _rows, inputs, units, _backwardPanels[l].Pointer, _width,
            _deltas[l - 1].Pointer, inputs, null, TileEpilogue.MultiplyByDerivative, _architecture.Hidden, _outputs[l].Pointer, inputs,
            p0, p1, r0, r1, _scratch[member].Tile);
    }

    /// <summary>Turns one row of output nets into outputs a and returns C(x) for <paramref name="label"/>.</summary>
    private float OutputRow(Span<float> row, int label)
    {
        var units = row.Length;
        var f = _architecture.Output;
        if (_architecture.Cost == Cost.CrossEntropy && f == Activation.Softmax)
        {
            var netLabel = row[label];
            return SoftmaxRow(row) - netLabel; // −ln a_label = ln Σ e^net − net_label
        }
        if (_architecture.Cost == Cost.CrossEntropy)
        {
            // Logistic outputs: Σ_j y_j softplus(−net_j) + (1 − y_j) softplus(net_j).
            var c = 0f;
            for (var j = 0; j < units; j++)
            {
                var y = Targets.Target(label, units, j);
                var net = row[j];
                c += y * Softplus(-net) + (1 - y) * Softplus(net);
                row[j] = 1f / (1f + MathF.Exp(-net));
            }
            return c;
        }
        if (f == Activation.Softmax) SoftmaxRow(row);
        else ActivateRow(f, row);
        var quadratic = 0f;
        for (var j = 0; j < units; j++)
        {
            var d = row[j] - Targets.Target(label, units, j);
            quadratic += 0.5f * d * d;
        }
        return quadratic;
    }

    /// <summary>δ_L for one row, from its outputs a and label.</summary>
    private void OutputError(ReadOnlySpan<float> a, int label, Span<float> δ)
    {
        var units = a.Length;
        for (var j = 0; j < units; j++) δ[j] = a[j] - Targets.Target(label, units, j); // a − y
        if (_architecture.Cost == Cost.CrossEntropy) return;
        if (_architecture.Output == Activation.Softmax)
        {
            // δ_j = a_j (g_j − Σ_k a_k g_k) with g = a − y.
            var s = 0f;
            for (var k = 0; k < units; k++) s += a[k] * δ[k];
            for (var j = 0; j < units; j++) δ[j] = a[j] * (δ[j] - s);
            return;
        }
        for (var j = 0; j < units; j++)
        {
            δ[j] *= _architecture.Output switch
            {
                Activation.Logistic => a[j] * (1 - a[j]),  // σ' = σ(1 − σ)
                Activation.Tanh => 1 - a[j] * a[j],        // tanh' = 1 − tanh²
                Activation.ReLU => a[j] > 0 ? 1 : 0,       // relu' = 1[net > 0]
                _ => 1,                                    // identity
            };
        }
    }

    /// <summary>Softmax of one row in place; returns ln Σ e^net.</summary>
    private static float SoftmaxRow(Span<float> row)
    {
        var max = float.NegativeInfinity;
        foreach (var v in row) max = MathF.Max(max, v);
        var sum = 0f;
        for (var j = 0; j < row.Length; j++) sum += row[j] = MathF.Exp(row[j] - max);
        var inverse = 1f / sum;
        for (var j = 0; j < row.Length; j++) row[j] *= inverse;
        return max + MathF.Log(sum);
    }

    private static float Softplus(float x) => x > 0 ? x + MathF.Log(1 + MathF.Exp(-x)) : MathF.Log(1 + MathF.Exp(x));

    /// <summary>a ← f(net) for one output row (scalar: the output layer is narrow).</summary>
    private static void ActivateRow(Activation f, Span<float> row)
    {
        for (var j = 0; j < row.Length; j++)
        {
            row[j] = f switch
            {
                Activation.Logistic => 1f / (1f + MathF.Exp(-row[j])),
                Activation.Tanh => MathF.Tanh(row[j]),
                Activation.ReLU => MathF.Max(row[j], 0f),
                _ => row[j],
            };
        }
    }

    /// <summary>One member's working memory.</summary>
    private sealed class MemberScratch
    {
        public MemberScratch(int width, int depth, int maxUnits)
        {
            _tile.Ensure(Math.Max(Gemm.MultiplyScratch(width), Kernels.TileRows * width));
            TreeStack.Ensure(depth * Kernels.TileRows * width);
            BiasStride = maxUnits;
            BiasStack.Ensure(depth * maxUnits);
        }

        private readonly PinnedBuffer _tile = new();

        /// <summary>One micro-tile (6 × W) for the edges of C, then a row block of packed A.</summary>
        public float* Tile => _tile.Pointer;
        /// <summary>The member's packed B panels of the weight gradient (rows × W each).</summary>
        public PinnedBuffer Panel { get; } = new();
        /// <summary>The chunk-tree stack of partial micro-tiles.</summary>
        public PinnedBuffer TreeStack { get; } = new();
        /// <summary>The chunk-tree stack of partial bias gradients (rows of BiasStride).</summary>
        public PinnedBuffer BiasStack { get; } = new();
        /// <summary>Floats from one entry of <see cref="BiasStack"/> to the next: the widest layer.</summary>
        public int BiasStride { get; }
    }
}
