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

/// <summary>One line of the training log.</summary>
public sealed record EpochReport(
    int Epoch,
    int Epochs,
    double TrainLoss,
    double TrainAccuracy,
    double TestLoss,
    double TestAccuracy,
    TimeSpan Elapsed,
    int Samples)
{
    /// <summary>Training samples per second in this epoch.</summary>
    public double SamplesPerSecond => Samples / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

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
    private int[] _order;
    private double _epochLoss;
    private int _epochCorrect, _epochSamples;

    /// <summary>Starts a run at epoch 0 from seeded initial weights (or <paramref name="parameters"/>).</summary>
    public TrainingRun(TrainingSettings settings, DataSet train, DataSet test, float[]? parameters = null)
    {
        Settings = settings;
        Train = train;
        Test = test;
        Parameters = parameters ?? Initialization.Create(settings.Architecture, settings.Seed);
        _optimizer = Optimizer.Create(settings.Architecture, settings.Optimizer);
        _evaluator = new BatchEngine(settings.Architecture, Math.Max(settings.ChunkSize, 256), settings.Threads);
        _order = Shuffling.Permutation(train.Count, settings.Seed, 0);
    }

    /// <summary>The settings.</summary>
    public TrainingSettings Settings { get; }
    /// <summary>The training set.</summary>
    public DataSet Train { get; }
    /// <summary>The test set.</summary>
    public DataSet Test { get; }
    /// <summary>The current weights and biases (replaced in place by each step).</summary>
    public float[] Parameters { get; }
    /// <summary>Updates applied so far: the version of <see cref="Parameters"/>.</summary>
    public long Version => _optimizer.StepCount;
    /// <summary>The current epoch (0-based).</summary>
    public int Epoch { get; private set; }
    /// <summary>The index of the next batch within the epoch.</summary>
    public int BatchIndex { get; private set; }
    /// <summary>Whether every epoch has been trained.</summary>
    public bool Finished => Epoch >= Settings.Epochs;
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

    /// <summary>
    /// Applies the summed gradient of the current batch (θ ← θ − η·update(sum / n)) and moves to the
    /// next batch; returns the epoch's report when this step ended an epoch.
    /// </summary>
    public EpochReport? Apply(GradientSum sum)
    {
        if (Finished) throw new InvalidOperationException("the run has finished");
        if (sum.SampleCount != CurrentBatch.Length)
            throw new ArgumentException($"the sum covers {sum.SampleCount} samples, the batch has {CurrentBatch.Length}", nameof(sum));
        if (!double.IsFinite(sum.LossSum))
            throw new TrainingDivergedException($"training diverged at epoch {Epoch + 1}, step {BatchIndex + 1}: the cost is {sum.LossSum} (try a smaller learning rate)");
        if (BatchIndex == 0 && !_epochClock.IsRunning) _epochClock.Restart();

        _optimizer.Step(Parameters, sum.Values, sum.SampleCount);
        _epochLoss += sum.LossSum;
        _epochCorrect += sum.CorrectCount;
        _epochSamples += sum.SampleCount;
        BatchIndex++;
        if (BatchIndex < BatchesPerEpoch) return null;

        _epochClock.Stop();
        var elapsed = _epochClock.Elapsed;
        var (testLoss, testCorrect) = _evaluator.Evaluate(Parameters, Test);
        var report = new EpochReport(
            Epoch + 1, Settings.Epochs,
            _epochLoss / _epochSamples, (double)_epochCorrect / _epochSamples,
            testLoss / Test.Count, (double)testCorrect / Test.Count,
            elapsed, _epochSamples);
        Epoch++;
        BatchIndex = 0;
        _epochLoss = 0;
        _epochCorrect = _epochSamples = 0;
        _epochClock.Reset();
        if (!Finished) _order = Shuffling.Permutation(Train.Count, Settings.Seed, Epoch);
        return report;
    }
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
