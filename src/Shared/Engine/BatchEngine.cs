using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Engine;

/// <summary>
/// Backpropagation in matrix form over a chunk of samples at a time, in float32: the engine
/// training uses. One instance per network shape; its buffers are reused from call to call.
/// </summary>
/// <remarks>
/// For a chunk of r samples (shapes in comments are rows × columns):
/// o_0 = X (r × n_0); net_l = o_l · W_lᵀ + b_l and o_{l+1} = f(net_l) (r × n_{l+1});
/// Δ_L = output error (r × n_L); ∂C/∂W_l = Δ_lᵀ · o_l (n_{l+1} × n_l), ∂C/∂b_l = Σ_rows Δ_l;
/// Δ_{l−1} = (Δ_l · W_l) ⊙ f'(o_l). Chunk gradients are added along <see cref="ChunkTree"/>.
/// Not thread-safe: one engine per thread.
/// </remarks>
public sealed class BatchEngine
{
    private readonly Architecture _architecture;
    private readonly float[][] _outputs;   // o_l: r × n_l, l = 0 … L (o_0 = inputs)
    private readonly float[][] _deltas;    // Δ_l: r × n_{l+1}, l = 0 … L − 1
    private readonly List<(int Level, GradientSum Sum)> _stack = [];
    private readonly Stack<GradientSum> _free = new();

    /// <summary>An engine for <paramref name="architecture"/> that cuts work into chunks of <paramref name="chunkSize"/> samples.</summary>
    public BatchEngine(Architecture architecture, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        _architecture = architecture;
        ChunkSize = chunkSize;
        var L = architecture.LayerCount;
        _outputs = new float[L + 1][];
        _deltas = new float[L][];
        for (var l = 0; l <= L; l++) _outputs[l] = new float[chunkSize * architecture.Sizes[l]];
        for (var l = 0; l < L; l++) _deltas[l] = new float[chunkSize * architecture.OutputsOf(l)];
    }

    /// <summary>The network shape.</summary>
    public Architecture Architecture => _architecture;
    /// <summary>Samples per chunk.</summary>
    public int ChunkSize { get; }

    /// <summary>
    /// <paramref name="result"/> ← Σ over the samples <paramref name="indices"/> of <paramref name="data"/>
    /// of ∂C(x)/∂θ at <paramref name="parameters"/>, added chunk by chunk along the chunk tree.
    /// </summary>
    public void Gradient(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> indices, GradientSum result)
    {
        CheckInputs(parameters, data);
        if (result.Values.Length != _architecture.ParameterCount) throw new ArgumentException("result has the wrong size", nameof(result));
        if (indices.IsEmpty)
        {
            result.Clear();
            return;
        }
        for (var start = 0; start < indices.Length; start += ChunkSize)
        {
            var chunk = indices.Slice(start, Math.Min(ChunkSize, indices.Length - start));
            var sum = _free.Count > 0 ? _free.Pop() : new GradientSum(_architecture.ParameterCount);
            ChunkGradient(parameters, data, chunk, sum);
            _stack.Add((0, sum));
            // Binary-counter merge: two nodes of the same level become their parent.
            while (_stack.Count >= 2 && _stack[^1].Level == _stack[^2].Level)
            {
                var (level, right) = _stack[^1];
                _stack.RemoveAt(_stack.Count - 1);
                _stack[^1].Sum.Add(right);
                _stack[^1] = (level + 1, _stack[^1].Sum);
                _free.Push(right);
            }
        }
        // What remains are the left spines of the tree, right to left.
        while (_stack.Count >= 2)
        {
            var right = _stack[^1].Sum;
            _stack.RemoveAt(_stack.Count - 1);
            _stack[^1].Sum.Add(right);
            _free.Push(right);
        }
        result.CopyFrom(_stack[0].Sum);
        _free.Push(_stack[0].Sum);
        _stack.Clear();
    }

    /// <summary>Σ C(x) and the number of correct predictions over <paramref name="indices"/> (all samples when null).</summary>
    public (double LossSum, int Correct) Evaluate(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> indices = default)
    {
        CheckInputs(parameters, data);
        double loss = 0;
        var correct = 0;
        var count = indices.IsEmpty ? data.Count : indices.Length;
        var sequential = new int[Math.Min(ChunkSize, count)];
        for (var start = 0; start < count; start += ChunkSize)
        {
            var rows = Math.Min(ChunkSize, count - start);
            ReadOnlySpan<int> chunk;
            if (indices.IsEmpty)
            {
                for (var r = 0; r < rows; r++) sequential[r] = start + r;
                chunk = sequential.AsSpan(0, rows);
            }
            else
            {
                chunk = indices.Slice(start, rows);
            }
            var (l, c) = Forward(parameters, data, chunk);
            loss += l;
            correct += c;
        }
        return (loss, correct);
    }

    /// <summary>The network outputs for one input row (allocates; for prediction, not training).</summary>
    public float[] Predict(ReadOnlySpan<float> parameters, ReadOnlySpan<float> x)
    {
        var L = _architecture.LayerCount;
        x.CopyTo(_outputs[0]);
        for (var l = 0; l < L; l++) LayerForward(parameters, l, 1);
        var a = _outputs[L].AsSpan(0, _architecture.OutputSize);
        if (_architecture.Output == Activation.Softmax) SoftmaxRow(a);
        else Activate(_architecture.Output, a);
        return a.ToArray();
    }

    private void CheckInputs(ReadOnlySpan<float> parameters, DataSet data)
    {
        if (parameters.Length != _architecture.ParameterCount)
            throw new ArgumentException($"{parameters.Length} parameters for a network of {_architecture.ParameterCount}", nameof(parameters));
        if (data.FeatureCount != _architecture.InputSize)
            throw new ArgumentException($"{data.Name} has {data.FeatureCount} features, the network {_architecture.InputSize} inputs", nameof(data));
    }

    /// <summary>One chunk: forward, output error, backward; writes the chunk's sum into <paramref name="sum"/>.</summary>
    private void ChunkGradient(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> chunk, GradientSum sum)
    {
        var L = _architecture.LayerCount;
        var rows = chunk.Length;
        var (loss, correct) = Forward(parameters, data, chunk);
        OutputError(data, chunk);

        var gradient = sum.Values.AsSpan();
        for (var l = L - 1; l >= 0; l--)
        {
            int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
            var δ = _deltas[l].AsSpan(0, rows * units);
            var o = _outputs[l].AsSpan(0, rows * inputs);

            // ∂C/∂W_l = Δ_lᵀ · o_l (units × inputs), ∂C/∂b_l = Σ_rows Δ_l.
            Gemm.MultiplyTransposedA(δ, o, _architecture.Weights(gradient, l), units, inputs, rows);
            var db = _architecture.Biases(gradient, l);
            δ[..units].CopyTo(db);
            for (var r = 1; r < rows; r++)
            {
                var δr = δ.Slice(r * units, units);
                for (var j = 0; j < units; j++) db[j] += δr[j];
            }
            if (l == 0) break;

            // Δ_{l−1} = (Δ_l · W_l) ⊙ f'(o_l).
            var below = _deltas[l - 1].AsSpan(0, rows * inputs);
            Gemm.Multiply(δ, _architecture.Weights(parameters, l), below, rows, inputs, units);
            MultiplyByDerivative(_architecture.ActivationOf(l - 1), below, o);
        }
        sum.SampleCount = rows;
        sum.LossSum = loss;
        sum.CorrectCount = correct;
    }

    /// <summary>Forward pass over a chunk; leaves o_l in the buffers and returns Σ C(x) and the correct count.</summary>
    private (double Loss, int Correct) Forward(ReadOnlySpan<float> parameters, DataSet data, ReadOnlySpan<int> chunk)
    {
        var L = _architecture.LayerCount;
        var rows = chunk.Length;
        var n0 = _architecture.InputSize;
        for (var r = 0; r < rows; r++) data.Row(chunk[r]).CopyTo(_outputs[0].AsSpan(r * n0, n0));

        for (var l = 0; l < L - 1; l++)
        {
            LayerForward(parameters, l, rows);
            Activate(_architecture.Hidden, _outputs[l + 1].AsSpan(0, rows * _architecture.OutputsOf(l)));
        }
        LayerForward(parameters, L - 1, rows);

        // The output layer: activation, cost and prediction row by row (the cost wants the nets).
        var units = _architecture.OutputSize;
        var labels = data.Labels;
        double loss = 0;
        var correct = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = _outputs[L].AsSpan(r * units, units);
            var label = labels[chunk[r]];
            loss += OutputRow(row, label);
            if (Targets.Predict(row) == label) correct++;
        }
        return (loss, correct);
    }

    /// <summary>o_{l+1} ← o_l · W_lᵀ + b_l (the nets; the activation follows).</summary>
    private void LayerForward(ReadOnlySpan<float> parameters, int l, int rows)
    {
        int inputs = _architecture.InputsOf(l), units = _architecture.OutputsOf(l);
        var net = _outputs[l + 1].AsSpan(0, rows * units);
        Gemm.MultiplyTransposedB(_outputs[l].AsSpan(0, rows * inputs), _architecture.Weights(parameters, l), net, rows, units, inputs);
        var b = _architecture.Biases(parameters, l);
        for (var r = 0; r < rows; r++)
        {
            var netRow = net.Slice(r * units, units);
            for (var j = 0; j < units; j++) netRow[j] += b[j];
        }
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
        else Activate(f, row);
        var quadratic = 0f;
        for (var j = 0; j < units; j++)
        {
            var d = row[j] - Targets.Target(label, units, j);
            quadratic += 0.5f * d * d;
        }
        return quadratic;
    }

    /// <summary>Δ_L for the chunk, from o_L and the labels.</summary>
    private void OutputError(DataSet data, ReadOnlySpan<int> chunk)
    {
        var L = _architecture.LayerCount;
        var units = _architecture.OutputSize;
        var labels = data.Labels;
        for (var r = 0; r < chunk.Length; r++)
        {
            var a = _outputs[L].AsSpan(r * units, units);
            var δ = _deltas[L - 1].AsSpan(r * units, units);
            var label = labels[chunk[r]];
            for (var j = 0; j < units; j++) δ[j] = a[j] - Targets.Target(label, units, j); // a − y
            if (_architecture.Cost == Cost.CrossEntropy) continue;
            if (_architecture.Output == Activation.Softmax)
            {
                // δ_j = a_j (g_j − Σ_k a_k g_k) with g = a − y.
                var s = 0f;
                for (var k = 0; k < units; k++) s += a[k] * δ[k];
                for (var j = 0; j < units; j++) δ[j] = a[j] * (δ[j] - s);
            }
            else
            {
                MultiplyByDerivative(_architecture.Output, δ, a);
            }
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

    /// <summary>o ← f(net) element-wise, in place.</summary>
    private static void Activate(Activation f, Span<float> values)
    {
        switch (f)
        {
            case Activation.Logistic:
                for (var i = 0; i < values.Length; i++) values[i] = 1f / (1f + MathF.Exp(-values[i]));
                break;
            case Activation.Tanh:
                for (var i = 0; i < values.Length; i++) values[i] = MathF.Tanh(values[i]);
                break;
            case Activation.ReLU:
                for (var i = 0; i < values.Length; i++) values[i] = MathF.Max(values[i], 0f);
                break;
            case Activation.Identity:
                break;
            default:
                throw new ArgumentException($"{f} is not element-wise", nameof(f));
        }
    }

    /// <summary>δ ← δ ⊙ f'(net), with f' written in terms of the output o = f(net).</summary>
    private static void MultiplyByDerivative(Activation f, Span<float> δ, ReadOnlySpan<float> o)
    {
        switch (f)
        {
            case Activation.Logistic:
                for (var i = 0; i < δ.Length; i++) δ[i] *= o[i] * (1 - o[i]);  // σ' = σ(1 − σ)
                break;
            case Activation.Tanh:
                for (var i = 0; i < δ.Length; i++) δ[i] *= 1 - o[i] * o[i];     // tanh' = 1 − tanh²
                break;
            case Activation.ReLU:
                for (var i = 0; i < δ.Length; i++) if (o[i] <= 0) δ[i] = 0;   // relu' = 1[net > 0]
                break;
            case Activation.Identity:
                break;
            default:
                throw new ArgumentException($"{f} is not element-wise", nameof(f));
        }
    }
}
