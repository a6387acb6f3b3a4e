using System.Numerics;
using System.Runtime.CompilerServices;
using MemoryMarshal = System.Runtime.InteropServices.MemoryMarshal;
using Backprop.Networks;

namespace Backprop.Training;

/// <summary>The update rules, from simple to complex.</summary>
public enum OptimizerKind
{
    /// <summary>The seed's plain gradient descent: Δw = −η ∂C/∂w.</summary>
    Sgd,
    /// <summary>Gradient descent with (heavy-ball) momentum.</summary>
    Momentum,
    /// <summary>Adam (Kingma and Ba 2015).</summary>
    Adam,
}

/// <summary>Hyper-parameters of the update rule.</summary>
/// <param name="Kind">Which rule.</param>
/// <param name="LearningRate">η.</param>
/// <param name="Momentum">μ for <see cref="OptimizerKind.Momentum"/>.</param>
/// <param name="Beta1">β₁ for Adam.</param>
/// <param name="Beta2">β₂ for Adam.</param>
/// <param name="Epsilon">ε for Adam.</param>
/// <param name="WeightDecay">λ of the L2 penalty ½λ‖W‖², added to the gradient of weights (not biases).</param>
/// <param name="WarmupSteps">Steps over which η rises linearly to its full value (Goyal et al. 2017).</param>
public sealed record OptimizerSettings(
    OptimizerKind Kind = OptimizerKind.Sgd,
    float LearningRate = 0.1f,
    float Momentum = 0.9f,
    float Beta1 = 0.9f,
    float Beta2 = 0.999f,
    float Epsilon = 1e-8f,
    float WeightDecay = 0f,
    int WarmupSteps = 0)
{
    /// <summary>Names the first setting that is out of range, or null when all are fine.</summary>
    public string? Validate()
    {
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) return $"learning rate {LearningRate} must be a positive number";
        if (Momentum is < 0 or >= 1 || float.IsNaN(Momentum)) return $"momentum {Momentum} must be in [0, 1)";
        if (Beta1 is < 0 or >= 1 || float.IsNaN(Beta1)) return $"beta1 {Beta1} must be in [0, 1)";
        if (Beta2 is < 0 or >= 1 || float.IsNaN(Beta2)) return $"beta2 {Beta2} must be in [0, 1)";
        if (!(Epsilon > 0)) return $"epsilon {Epsilon} must be positive";
        if (WeightDecay < 0 || !float.IsFinite(WeightDecay)) return $"weight decay {WeightDecay} must be ≥ 0";
        if (WarmupSteps < 0) return $"warm-up steps {WarmupSteps} must be ≥ 0";
        return null;
    }

    /// <summary>The name used on the command line.</summary>
    public static string Name(OptimizerKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Parses "sgd", "momentum", "adam".</summary>
    public static bool TryParse(string text, out OptimizerKind kind) =>
        Enum.TryParse(text.Trim(), ignoreCase: true, out kind) && Enum.IsDefined(kind);
}

/// <summary>
/// Applies one update θ ← θ + Δθ from a gradient sum over n samples: the average is g = sum / n
/// (the cost is an average over C(x)). Keeps its state (velocities, moments, the step count t)
/// in flat arrays beside the parameters.
/// </summary>
public abstract class Optimizer
{
    private readonly Architecture _architecture;

    /// <summary>Creates the optimizer for <paramref name="architecture"/>.</summary>
    protected Optimizer(Architecture architecture, OptimizerSettings settings)
    {
        var problem = settings.Validate();
        if (problem is not null) throw new ArgumentException(problem, nameof(settings));
        _architecture = architecture;
        Settings = settings;
    }

    /// <summary>The hyper-parameters.</summary>
    public OptimizerSettings Settings { get; }
    /// <summary>t: updates applied so far.</summary>
    public long StepCount { get; protected set; }
    /// <summary>The state arrays, in a fixed order (for checkpoints).</summary>
    public abstract IReadOnlyList<float[]> State { get; }

    /// <summary>Creates the optimizer <paramref name="settings"/> names.</summary>
    public static Optimizer Create(Architecture architecture, OptimizerSettings settings) => settings.Kind switch
    {
        OptimizerKind.Sgd => new Sgd(architecture, settings),
        OptimizerKind.Momentum => new MomentumSgd(architecture, settings),
        OptimizerKind.Adam => new Adam(architecture, settings),
        _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Kind, null),
    };

    /// <summary>η for the next step: linear warm-up, then constant.</summary>
    public float CurrentLearningRate =>
        Settings.WarmupSteps > 0 && StepCount < Settings.WarmupSteps
            ? Settings.LearningRate * (StepCount + 1) / Settings.WarmupSteps
            : Settings.LearningRate;

    /// <summary>One step from the gradient <paramref name="sum"/> of <paramref name="sampleCount"/> samples.</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> sum, int sampleCount)
    {
        if (parameters.Length != _architecture.ParameterCount || sum.Length != parameters.Length)
            throw new ArgumentException("parameter and gradient sizes differ from the network's");
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleCount, 1);
        var η = CurrentLearningRate;
        var inverseCount = 1f / sampleCount;
        StepCount++;
        BeginStep();
        for (var l = 0; l < _architecture.LayerCount; l++)
        {
            // L2 weight decay on weights only: g ← g + λw.
            Update(parameters, sum, _architecture.WeightOffset(l), _architecture.WeightCount(l), inverseCount, η, Settings.WeightDecay);
            Update(parameters, sum, _architecture.BiasOffset(l), _architecture.OutputsOf(l), inverseCount, η, 0f);
        }
    }

    /// <summary>Called once per step before the updates (for per-step constants).</summary>
    protected virtual void BeginStep() { }

    /// <summary>
    /// Updates θ[start … start + count) with g = sum · inverseCount + λθ. Called only from <see cref="Step"/>,
    /// which has checked that θ, sum and the state arrays all hold the network's parameter count, so
    /// start + count never passes their ends: the vector loops read and write through refs without bounds checks.
    /// </summary>
    protected abstract void Update(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float η, float λ);

    /// <summary>A rule's update of one parameter w from its gradient g, which also moves the rule's state for it.</summary>
    private protected interface IRule
    {
        /// <summary>The new w for parameters i … i + <see cref="Vector{T}.Count"/> − 1.</summary>
        Vector<float> Step(Vector<float> w, Vector<float> g, int i);

        /// <summary>The new w for parameter i: the same operations as the vector form, so the same bits.</summary>
        float Step(float w, float g, int i);
    }

    /// <summary>
    /// θ[start … start + count) ← <paramref name="rule"/>(θ, g) with g = sum · inverseCount + λθ: vectors where
    /// they fit, the same operations one by one for the rest, so the same bits either way. Bounds as for
    /// <see cref="Update"/>.
    /// </summary>
    private protected static void Apply<TRule>(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float λ, TRule rule)
        where TRule : struct, IRule
    {
        var i = Vector.IsHardwareAccelerated ? ApplyVectors(θ, sum, start, count, inverseCount, λ, rule) : start;
        for (; i < start + count; i++)
        {
            var g = sum[i] * inverseCount + λ * θ[i];
            θ[i] = rule.Step(θ[i], g, i);
        }
    }

    /// <summary>
    /// The vector part of <see cref="Apply"/>; returns where the rest starts. A method of its own so that the
    /// JIT's inlining budget, which is per method, covers the rule's vector step here and its scalar one there.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ApplyVectors<TRule>(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float λ, TRule rule)
        where TRule : struct, IRule
    {
        var n = new Vector<float>(inverseCount);
        var l2 = new Vector<float>(λ);
        ref var t = ref MemoryMarshal.GetReference(θ);
        ref var s = ref MemoryMarshal.GetReference(sum);
        var i = start;
        for (; i <= start + count - Vector<float>.Count; i += Vector<float>.Count)
        {
            var w = Vector.LoadUnsafe(ref t, (nuint)i);
            var g = Vector.LoadUnsafe(ref s, (nuint)i) * n + l2 * w;
            rule.Step(w, g, i).StoreUnsafe(ref t, (nuint)i);
        }
        return i;
    }

    /// <summary>Element i of <paramref name="state"/> on, as a vector (no bounds check: see <see cref="Update"/>).</summary>
    private protected static Vector<float> Load(float[] state, int i) =>
        Vector.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(state), (nuint)i);

    /// <summary>Elements i … of <paramref name="state"/> ← <paramref name="value"/> (no bounds check: see <see cref="Update"/>).</summary>
    private protected static void Store(float[] state, int i, Vector<float> value) =>
        value.StoreUnsafe(ref MemoryMarshal.GetArrayDataReference(state), (nuint)i);

    /// <summary>Restores the state saved from <see cref="State"/> and <see cref="StepCount"/>.</summary>
    public void Restore(long stepCount, IReadOnlyList<float[]> state)
    {
        if (state.Count != State.Count) throw new ArgumentException($"{state.Count} state arrays for an optimizer with {State.Count}", nameof(state));
        for (var k = 0; k < state.Count; k++)
        {
            if (state[k].Length != State[k].Length) throw new ArgumentException($"state array {k} has {state[k].Length} values, expected {State[k].Length}", nameof(state));
            state[k].CopyTo(State[k], 0);
        }
        StepCount = stepCount;
    }
}

/// <summary>Δθ = −η g.</summary>
public sealed class Sgd(Architecture architecture, OptimizerSettings settings) : Optimizer(architecture, settings)
{
    /// <inheritdoc/>
    public override IReadOnlyList<float[]> State => [];

    /// <inheritdoc/>
    protected override void Update(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float η, float λ) =>
        Apply(θ, sum, start, count, inverseCount, λ, new Rule(η));

    private readonly struct Rule(float η) : IRule
    {
        private readonly Vector<float> _rate = new(η);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Step(Vector<float> w, Vector<float> g, int i) => w - _rate * g;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Step(float w, float g, int i) => w - η * g;
    }
}

/// <summary>v ← μv + g; Δθ = −η v.</summary>
public sealed class MomentumSgd(Architecture architecture, OptimizerSettings settings) : Optimizer(architecture, settings)
{
    private readonly float[] _velocity = new float[architecture.ParameterCount];

    /// <inheritdoc/>
    public override IReadOnlyList<float[]> State => [_velocity];

    /// <inheritdoc/>
    protected override void Update(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float η, float λ) =>
        Apply(θ, sum, start, count, inverseCount, λ, new Rule(_velocity, Settings.Momentum, η));

    private readonly struct Rule(float[] velocity, float μ, float η) : IRule
    {
        private readonly Vector<float> _keep = new(μ), _rate = new(η);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Step(Vector<float> w, Vector<float> g, int i)
        {
            var v = _keep * Load(velocity, i) + g;
            Store(velocity, i, v);
            return w - _rate * v;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Step(float w, float g, int i)
        {
            velocity[i] = μ * velocity[i] + g;  // v ← μv + g
            return w - η * velocity[i];         // θ ← θ − ηv
        }
    }
}

/// <summary>Adam: m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; Δθ = −η m̂ / (√v̂ + ε) with bias-corrected m̂, v̂.</summary>
public sealed class Adam(Architecture architecture, OptimizerSettings settings) : Optimizer(architecture, settings)
{
    private readonly float[] _m = new float[architecture.ParameterCount];
    private readonly float[] _v = new float[architecture.ParameterCount];
    private float _mCorrection = 1, _vCorrection = 1;

    /// <inheritdoc/>
    public override IReadOnlyList<float[]> State => [_m, _v];

    /// <inheritdoc/>
    protected override void BeginStep()
    {
        _mCorrection = (float)(1 / (1 - Math.Pow(Settings.Beta1, StepCount)));  // 1 / (1 − β₁ᵗ)
        _vCorrection = (float)(1 / (1 - Math.Pow(Settings.Beta2, StepCount)));  // 1 / (1 − β₂ᵗ)
    }

    /// <inheritdoc/>
    /// <remarks>√ and ÷ are correctly rounded in the vector form too.</remarks>
    protected override void Update(Span<float> θ, ReadOnlySpan<float> sum, int start, int count, float inverseCount, float η, float λ) =>
        Apply(θ, sum, start, count, inverseCount, λ, new Rule(this, η));

    private readonly struct Rule(Adam adam, float η) : IRule
    {
        private readonly float[] _m = adam._m, _v = adam._v;
        private readonly float _β1 = adam.Settings.Beta1, _β2 = adam.Settings.Beta2, _ε = adam.Settings.Epsilon;
        private readonly float _mCorrection = adam._mCorrection, _vCorrection = adam._vCorrection;
        private readonly Vector<float> _b1 = new(adam.Settings.Beta1), _c1 = new(1 - adam.Settings.Beta1);
        private readonly Vector<float> _b2 = new(adam.Settings.Beta2), _c2 = new(1 - adam.Settings.Beta2), _e = new(adam.Settings.Epsilon);
        private readonly Vector<float> _mHat = new(adam._mCorrection), _vHat = new(adam._vCorrection), _rate = new(η);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Step(Vector<float> w, Vector<float> g, int i)
        {
            var m = _b1 * Load(_m, i) + _c1 * g;
            var v = _b2 * Load(_v, i) + _c2 * g * g;
            Store(_m, i, m);
            Store(_v, i, v);
            return w - _rate * (m * _mHat) / (Vector.SquareRoot(v * _vHat) + _e);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Step(float w, float g, int i)
        {
            _m[i] = _β1 * _m[i] + (1 - _β1) * g;       // first moment
            _v[i] = _β2 * _v[i] + (1 - _β2) * g * g;   // second moment
            var mHat = _m[i] * _mCorrection;
            var vHat = _v[i] * _vCorrection;
            return w - η * mHat / (MathF.Sqrt(vHat) + _ε);
        }
    }
}
