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
///
/// This file has the calls and the buffers; BatchEngine.Block.cs one block's phases and how they are
/// shared out; <see cref="OutputLayer"/> the output layer's math.
/// </remarks>
public sealed unsafe partial class BatchEngine
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
    private bool _gradient;

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
        OutputLayer.Activate(_architecture.Output, a);
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
}
