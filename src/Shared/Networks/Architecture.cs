namespace Backprop.Networks;

/// <summary>
/// The shape of a multi-layer perceptron: layer sizes n_0 (inputs) … n_L (outputs), the activation
/// of the hidden layers and of the output layer, and the cost.
/// </summary>
/// <remarks>
/// Parameters live in one flat float array, layer after layer: W_l (n_{l+1} × n_l, row-major: row j
/// holds the weights w_ji into neuron j), then b_l (n_{l+1}). One array keeps optimizers, averaging
/// and the wire simple.
/// </remarks>
public sealed class Architecture : IEquatable<Architecture>
{
    private readonly int[] _sizes;
    private readonly int[] _weightOffsets;
    private readonly int[] _biasOffsets;

    /// <summary>Creates an architecture; throws <see cref="ArgumentException"/> on an invalid one.</summary>
    public Architecture(IReadOnlyList<int> sizes, Activation hidden, Activation output, Cost cost)
    {
        if (sizes.Count < 2) throw new ArgumentException("a network needs at least an input and an output layer", nameof(sizes));
        for (var l = 0; l < sizes.Count; l++)
        {
            if (sizes[l] < 1) throw new ArgumentException($"layer {l} has {sizes[l]} units; every layer needs at least 1", nameof(sizes));
        }
        if (!Activations.IsHidden(hidden)) throw new ArgumentException($"{Activations.Name(hidden)} cannot be a hidden activation (use logistic, tanh or relu)", nameof(hidden));
        if (!Costs.Supports(cost, output)) throw new ArgumentException($"{Costs.Name(cost)} cost needs a softmax or logistic output, not {Activations.Name(output)}", nameof(cost));
        if (output == Activation.Softmax && sizes[^1] < 2) throw new ArgumentException("a softmax output needs at least 2 units", nameof(output));

        _sizes = [.. sizes];
        Hidden = hidden;
        Output = output;
        Cost = cost;
        _weightOffsets = new int[LayerCount];
        _biasOffsets = new int[LayerCount];
        long offset = 0;
        for (var l = 0; l < LayerCount; l++)
        {
            _weightOffsets[l] = checked((int)offset);
            offset += (long)_sizes[l + 1] * _sizes[l];
            _biasOffsets[l] = checked((int)offset);
            offset += _sizes[l + 1];
        }
        if (offset > Array.MaxLength) throw new ArgumentException($"the network has {offset} parameters, more than one array can hold", nameof(sizes));
        ParameterCount = (int)offset;
    }

    /// <summary>n_0 … n_L.</summary>
    public IReadOnlyList<int> Sizes => _sizes;
    /// <summary>The activation of every hidden layer.</summary>
    public Activation Hidden { get; }
    /// <summary>The activation of the output layer.</summary>
    public Activation Output { get; }
    /// <summary>The per-sample cost.</summary>
    public Cost Cost { get; }

    /// <summary>L: the number of weight layers.</summary>
    public int LayerCount => _sizes.Length - 1;
    /// <summary>n_0.</summary>
    public int InputSize => _sizes[0];
    /// <summary>n_L.</summary>
    public int OutputSize => _sizes[^1];
    /// <summary>Total count of weights and biases.</summary>
    public int ParameterCount { get; }
    /// <summary>The widest layer, inputs included.</summary>
    public int MaxWidth => _sizes.Max();

    /// <summary>Inputs of weight layer l (0-based): n_l.</summary>
    public int InputsOf(int layer) => _sizes[layer];
    /// <summary>Outputs of weight layer l (0-based): n_{l+1}.</summary>
    public int OutputsOf(int layer) => _sizes[layer + 1];
    /// <summary>Activation of weight layer l (0-based).</summary>
    public Activation ActivationOf(int layer) => layer == LayerCount - 1 ? Output : Hidden;
    /// <summary>Index of w_00 of layer l in the flat parameter array.</summary>
    public int WeightOffset(int layer) => _weightOffsets[layer];
    /// <summary>Index of b_0 of layer l in the flat parameter array.</summary>
    public int BiasOffset(int layer) => _biasOffsets[layer];
    /// <summary>Number of weights of layer l.</summary>
    public int WeightCount(int layer) => _sizes[layer] * _sizes[layer + 1];

    /// <summary>W_l as a span (n_{l+1} × n_l, row-major).</summary>
    public Span<float> Weights(Span<float> parameters, int layer) => parameters.Slice(_weightOffsets[layer], WeightCount(layer));
    /// <summary>b_l as a span.</summary>
    public Span<float> Biases(Span<float> parameters, int layer) => parameters.Slice(_biasOffsets[layer], _sizes[layer + 1]);
    /// <inheritdoc cref="Weights(Span{float}, int)"/>
    public ReadOnlySpan<float> Weights(ReadOnlySpan<float> parameters, int layer) => parameters.Slice(_weightOffsets[layer], WeightCount(layer));
    /// <inheritdoc cref="Biases(Span{float}, int)"/>
    public ReadOnlySpan<float> Biases(ReadOnlySpan<float> parameters, int layer) => parameters.Slice(_biasOffsets[layer], _sizes[layer + 1]);

    /// <summary>Whether parameter i is a weight (true) or a bias (false); weight decay applies to weights only.</summary>
    public bool IsWeight(int index)
    {
        for (var l = 0; l < LayerCount; l++)
        {
            if (index < _biasOffsets[l]) return index >= _weightOffsets[l];
        }
        return false;
    }

    /// <summary>"784-100-10 relu/softmax cross-entropy".</summary>
    public override string ToString() =>
        $"{string.Join('-', _sizes)} {Activations.Name(Hidden)}/{Activations.Name(Output)} {Costs.Name(Cost)}";

    /// <inheritdoc/>
    public bool Equals(Architecture? other) =>
        other is not null && _sizes.AsSpan().SequenceEqual(other._sizes) && Hidden == other.Hidden && Output == other.Output && Cost == other.Cost;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Architecture);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var n in _sizes) hash.Add(n);
        hash.Add(Hidden);
        hash.Add(Output);
        hash.Add(Cost);
        return hash.ToHashCode();
    }
}
