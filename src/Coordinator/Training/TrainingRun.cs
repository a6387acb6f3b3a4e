using System.Diagnostics;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Coordinator.Training;

/// <summary>What a run trains and how.</summary>
/// <param name="Architecture">The network.</param>
/// <param name="Optimizer">The update rule and its hyper-parameters.</param>
/// <param name="BatchSize">Samples per mini-batch (the last batch of an epoch may be smaller).</param>
/// <param name="Epochs">Passes over the training set.</param>
/// <param name="Seed">Seeds the initial weights and every epoch's order.</param>
/// <param name="ChunkSize">Samples per chunk: the unit of work and of the fixed reduction order.</param>
/// <param name="Threads">Threads of the engines in this process (null: all processors); changes no result.</param>
public sealed record TrainingSettings(
    Architecture Architecture,
    OptimizerSettings Optimizer,
    int BatchSize = 32,
    int Epochs = 20,
    int Seed = 1,
    int ChunkSize = 16,
    int? Threads = null);

/// <summary>
/// The coordinator's side of training, without any transport: it owns the weights, the optimizer
/// state, the epoch order and the step; says which samples the next step covers; and applies the
/// summed gradient of that step. Whoever computes the sums (an engine in this process, worker
/// actors on other machines) plugs in around it.
/// </summary>
public sealed class TrainingRun
{
    private readonly Optimizer _optimizer;
    private readonly BatchEngine _evaluator;
    private readonly Stopwatch _epochClock = new();
    private readonly Stopwatch _runClock = new();
    private int[] _order;
    private EndedEpoch? _ended;
    private double _epochLoss;
    private int _epochCorrect, _epochSamples;

    /// <summary>Starts a run at epoch 0 from seeded initial weights (or <paramref name="parameters"/>).</summary>
    public TrainingRun(TrainingSettings settings, DataSet train, DataSet test, FeatureScaling? scaling = null, float[]? parameters = null)
    {
        Settings = settings;
        Scaling = scaling ?? FeatureScaling.Identity(train.FeatureCount);
        Train = train;
        Test = test;
        Parameters = parameters ?? Initialization.Create(settings.Architecture, settings.Seed);
        _optimizer = Optimizer.Create(settings.Architecture, settings.Optimizer);
        _evaluator = new BatchEngine(settings.Architecture, Math.Max(settings.ChunkSize, 256), settings.Threads);
        _order = Shuffling.Permutation(train.Count, settings.Seed, 0);
    }

    /// <summary>The settings.</summary>
    public TrainingSettings Settings { get; }
    /// <summary>The scaling that turned the raw data into <see cref="Train"/> and <see cref="Test"/>.</summary>
    public FeatureScaling Scaling { get; }
    /// <summary>The training set (scaled).</summary>
    public DataSet Train { get; }
    /// <summary>The test set.</summary>
    public DataSet Test { get; }
    /// <summary>The current weights and biases (replaced in place by each step).</summary>
    public float[] Parameters { get; }
    /// <summary>Steps taken so far: the version of the weights (of <see cref="Parameters"/>, unless the workers hold them).</summary>
    public long Version { get; private set; }
    /// <summary>The optimizer's state arrays (velocities, moments), in a fixed order, and its step count.</summary>
    public (IReadOnlyList<float[]> Arrays, long StepCount) OptimizerState => (_optimizer.State, _optimizer.StepCount);
    /// <summary>The current epoch (0-based).</summary>
    public int Epoch { get; private set; }
    /// <summary>The index of the next batch within the epoch.</summary>
    public int BatchIndex { get; private set; }
    /// <summary>Whether every epoch has been trained.</summary>
    public bool Finished => Epoch >= Settings.Epochs;
    /// <summary>The report of the last epoch <see cref="CompleteEpoch"/> evaluated (null before the first).</summary>
    public EpochReport? LastReport { get; private set; }
    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch => (Train.Count + Settings.BatchSize - 1) / Settings.BatchSize;

    /// <summary>The training-set indices of the next step's samples, in order.</summary>
    public ReadOnlyMemory<int> CurrentBatch
    {
        get
        {
            var start = BatchIndex * Settings.BatchSize;
            return _order.AsMemory(start, Math.Min(Settings.BatchSize, Train.Count - start));
        }
    }

    /// <summary>The number of chunks of the next step.</summary>
    public int ChunkCount => ChunkTree.ChunkCount(CurrentBatch.Length, Settings.ChunkSize);

    /// <summary>Marks the start of a step: the epoch's clock runs from its first step to its last update.</summary>
    public void BeginStep()
    {
        if (!_runClock.IsRunning) _runClock.Start();
        if (BatchIndex == 0 && !_epochClock.IsRunning) _epochClock.Restart();
    }

    /// <summary>
    /// Applies the summed gradient of the current batch (θ ← θ − η·update(sum / n)) and moves to the
    /// next batch. Returns true when this step ended an epoch; <see cref="CompleteEpoch"/> then
    /// evaluates the test set and gives the epoch's report.
    /// </summary>
    public bool Apply(GradientSum sum)
    {
        Check(sum.SampleCount, sum.LossSum);
        _optimizer.Step(Parameters, sum.Values, sum.SampleCount);
        return Advance(sum.SampleCount, sum.LossSum, sum.CorrectCount);
    }

    /// <summary>
    /// Records a step whose update the workers applied to their replicas (all-reduce): the batch's
    /// sample count, summed cost and correct count. <see cref="Parameters"/> is not touched; it is
    /// set from a replica with <see cref="SetParameters"/> when the weights are needed.
    /// Returns true when this step ended an epoch.
    /// </summary>
    public bool Record(int sampleCount, double lossSum, int correctCount)
    {
        Check(sampleCount, lossSum);
        return Advance(sampleCount, lossSum, correctCount);
    }

    /// <summary>The weights of the current version, from a replica.</summary>
    public void SetParameters(ReadOnlySpan<float> parameters)
    {
        if (parameters.Length != Parameters.Length) throw new ArgumentException($"{parameters.Length} values for a network of {Parameters.Length}", nameof(parameters));
        parameters.CopyTo(Parameters);
    }

    private void Check(int sampleCount, double lossSum)
    {
        if (Finished) throw new InvalidOperationException("the run has finished");
        if (sampleCount != CurrentBatch.Length)
            throw new ArgumentException($"the sum covers {sampleCount} samples, the batch has {CurrentBatch.Length}", nameof(sampleCount));
        if (!double.IsFinite(lossSum))
            throw new TrainingDivergedException($"training diverged at epoch {Epoch + 1}, step {BatchIndex + 1}: the cost is {lossSum} (try a smaller learning rate)");
        BeginStep();
    }

    private bool Advance(int sampleCount, double lossSum, int correctCount)
    {
        Version++;
        _epochLoss += lossSum;
        _epochCorrect += correctCount;
        _epochSamples += sampleCount;
        BatchIndex++;
        if (BatchIndex < BatchesPerEpoch) return false;

        _epochClock.Stop();
        _ended = new EndedEpoch(Epoch + 1, _epochLoss / _epochSamples, (double)_epochCorrect / _epochSamples, _epochClock.Elapsed, _epochSamples);
        Epoch++;
        BatchIndex = 0;
        _epochLoss = 0;
        _epochCorrect = _epochSamples = 0;
        _epochClock.Reset();
        if (!Finished) _order = Shuffling.Permutation(Train.Count, Settings.Seed, Epoch);
        return true;
    }

    /// <summary>
    /// The report of the epoch the last <see cref="Apply"/> ended, with the test set evaluated at the
    /// current weights (call it before the next update). Its <see cref="EpochReport.SinceStart"/> is
    /// the wall time from the run's first step to the end of this evaluation.
    /// </summary>
    public EpochReport CompleteEpoch(StepTiming? timing = null)
    {
        var ended = _ended ?? throw new InvalidOperationException("no epoch has ended since the last report");
        _ended = null;
        var (testLoss, testCorrect) = _evaluator.Evaluate(Parameters, Test);
        return LastReport = new EpochReport(ended.Epoch, Settings.Epochs, ended.TrainLoss, ended.TrainAccuracy,
            testLoss / Test.Count, (double)testCorrect / Test.Count, ended.Elapsed, ended.Samples, timing, _runClock.Elapsed);
    }

    private sealed record EndedEpoch(int Epoch, double TrainLoss, double TrainAccuracy, TimeSpan Elapsed, int Samples);
}

/// <summary>The cost became NaN or infinite.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message) : base(message) { }
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException() { }
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message, Exception inner) : base(message, inner) { }
}
