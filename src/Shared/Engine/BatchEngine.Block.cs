using System.Diagnostics;
using Backprop.Training;

namespace Backprop.Engine;

// One block of samples, run by every member of the team: the phases, and how each is shared out.
public sealed unsafe partial class BatchEngine
{
    /// <summary>Runs the block [<see cref="_first"/>, + <see cref="_rows"/>) on the team (or the calling thread alone).</summary>
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

    /// <summary>One block, run by every member of the team: forward, output error, backward.</summary>
    private void BlockJob(int member)
    {
        var members = _members;
        var L = _architecture.LayerCount;
        // Member 0 (the calling thread) keeps the phase times, when asked to.
        var clock = member == 0 ? _phases : null;
        var since = clock is null ? 0 : Stopwatch.GetTimestamp();
        if (_first == 0)
        {
            // The call's first block packs the weights for all of its blocks.
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
            if (!_gradient || l == 0) continue;
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
            _rowLoss[r] = OutputLayer.OutputsAndCost(_architecture, a, label);
            _rowCorrect[r] = Targets.Predict(a) == label;
            if (_gradient) OutputLayer.Error(_architecture, a, label, new Span<float>(_deltas[L - 1].Pointer + r * units, units));
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
