using System.CommandLine;
using System.Globalization;
using Backprop.Coordinator.Actors;
using Backprop.Clustering;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.CommandLine;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Models;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Coordinator.Cli;

/// <summary><c>backprop train</c>: trains a network and prints a line per epoch.</summary>
internal sealed class TrainCommand
{
    private readonly DataOptionSet _data = new();
    private readonly Option<ScalingKind> _scale = new Option<ScalingKind>("--scale")
    {
        Description = "Feature scaling fitted on the training data: none, max, minmax, standard",
        DefaultValueFactory = _ => ScalingKind.Max,
        HelpName = "none|max|minmax|standard",
    }.WithParser(Parse.Scaling);
    private readonly Option<int[]?> _hidden = new Option<int[]?>("--hidden")
    {
        Description = "Hidden layer sizes, comma-separated (input and output sizes come from the data)",
        HelpName = "N,N,...",
        Arity = ArgumentArity.ExactlyOne,
    }.WithParser(Parse.Sizes);
    private readonly Option<int[]?> _layers = new Option<int[]?>("--layers")
    {
        Description = "All layer sizes including input and output, comma-separated (instead of --hidden); checked against the data",
        HelpName = "N,N,...",
        Arity = ArgumentArity.ExactlyOne,
    }.WithParser(Parse.Sizes);
    private readonly Option<Activation> _activation = new Option<Activation>("--activation")
    {
        Description = "Hidden activation: logistic, tanh, relu",
        DefaultValueFactory = _ => Activation.ReLU,
    }.WithParser(Parse.Activation);
    private readonly Option<Activation?> _output = new Option<Activation?>("--output")
    {
        Description = "Output activation: softmax (default with cross-entropy), logistic (default with quadratic), tanh, relu, identity",
    }.WithParser(t => { var (v, e) = Parse.Activation(t); return (v, e); });
    private readonly Option<Cost> _cost = new Option<Cost>("--cost")
    {
        Description = "Cost: quadratic (the seed's ½‖a − y‖²) or cross-entropy",
        DefaultValueFactory = _ => Cost.CrossEntropy,
    }.WithParser(Parse.Cost);
    private readonly Option<OptimizerKind> _optimizer = new Option<OptimizerKind>("--optimizer")
    {
        Description = "Update rule: sgd, momentum, adam",
        DefaultValueFactory = _ => OptimizerKind.Adam,
    }.WithParser(Parse.Optimizer);
    private readonly Option<float?> _learningRate = new("--learning-rate", "--lr")
    {
        Description = "η (default: 0.1 for sgd, 0.01 for momentum, 0.001 for adam)",
    };
    private readonly Option<float> _momentum = new("--momentum") { Description = "μ for momentum", DefaultValueFactory = _ => 0.9f };
    private readonly Option<float> _beta1 = new("--beta1") { Description = "β₁ for adam", DefaultValueFactory = _ => 0.9f };
    private readonly Option<float> _beta2 = new("--beta2") { Description = "β₂ for adam", DefaultValueFactory = _ => 0.999f };
    private readonly Option<float> _epsilon = new("--epsilon") { Description = "ε for adam", DefaultValueFactory = _ => 1e-8f };
    private readonly Option<float> _weightDecay = new("--weight-decay") { Description = "L2 weight decay λ (weights only)", DefaultValueFactory = _ => 0f };
    private readonly Option<int> _warmup = new("--warmup-steps") { Description = "Steps of linear learning-rate warm-up", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _batchSize = new Option<int>("--batch-size") { Description = "Samples per mini-batch", DefaultValueFactory = _ => 32 }.WithParser(Parse.PositiveInt);
    private readonly Option<int> _epochs = new Option<int>("--epochs") { Description = "Passes over the training data", DefaultValueFactory = _ => 30 }.WithParser(Parse.PositiveInt);
    private readonly Option<int> _seed = new("--seed") { Description = "Seed of the initial weights and the epoch order", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _chunkSize = new Option<int>("--chunk-size") { Description = "Samples per chunk, the unit of work whose sums are added in a fixed order", DefaultValueFactory = _ => 16 }.WithParser(Parse.PositiveInt);
    private readonly Option<int?> _threads = new Option<int?>("--threads")
    {
        Description = "Threads each worker computes with (default: the cores shared among the local workers); the result is the same bits for any count",
    }.WithParser(t => { var (n, e) = Parse.PositiveInt(t); return (n, e); });
    private readonly Option<int> _workers = new Option<int>("--workers", "-w") { Description = "Worker actors to spread each batch over (1: single process)", DefaultValueFactory = _ => 2 }.WithParser(Parse.PositiveInt);
    private readonly Option<double> _stepTimeout = new Option<double>("--step-timeout")
    {
        Description = "Seconds a worker may take for its part of a step before the part is given to another worker",
        DefaultValueFactory = _ => 30,
    }.WithParser(Parse.PositiveSeconds);
    private readonly Option<double> _workerTimeout = new Option<double>("--worker-timeout")
    {
        Description = "Seconds to wait with no worker before giving up",
        DefaultValueFactory = _ => 60,
    }.WithParser(Parse.PositiveSeconds);
    private readonly Option<bool> _cluster = new("--cluster")
    {
        Description = "Be the coordinator node of a cluster: worker nodes (backprop-worker) join it over the network",
    };
    private readonly Option<bool> _loopback = new("--loopback")
    {
        Description = "Run the workers as separate nodes on 127.0.0.1 in this process, talking over TCP",
    };
    private readonly Option<ReduceMode> _reduce = new Option<ReduceMode>("--reduce")
    {
        Description = "How worker processes add up a step's gradients: allreduce (each worker owns a segment and every worker updates its own replica; the coordinator moves no tensors) or star (the coordinator adds them and sends the weights); workers in this process always use star",
        DefaultValueFactory = _ => ReduceMode.AllReduce,
    }.WithParser(t => t.Trim().ToLowerInvariant() switch
    {
        "allreduce" or "all-reduce" => (ReduceMode.AllReduce, null),
        "star" => (ReduceMode.Star, null),
        _ => (ReduceMode.AllReduce, $"'{t}' is not a reduce mode (allreduce, star)"),
    });
    private readonly Option<int> _checkReplicas = new Option<int>("--check-replicas-every")
    {
        Description = "With allreduce, compare a hash of every worker's weights and optimizer state every this many steps; a worker whose replica differs stops the run (0: never)",
        DefaultValueFactory = _ => 100,
        HelpName = "STEPS",
    }.WithParser(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? (n, null) : (0, "expected a number of steps, 0 or more"));
    private readonly Option<double> _verifyFraction = new Option<double>("--verify-fraction")
    {
        Description = "Share of the gradient computations given to a second worker as well, whose bits must agree; a worker shown wrong (a third decides) is set aside (0: none; needs 2 workers, 3 to decide)",
        DefaultValueFactory = _ => CoordinatorSettings.DefaultVerifyFraction,
        HelpName = "FRACTION",
    }.WithParser(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && f is >= 0 and <= 1 ? (f, null) : (0, "expected a fraction from 0 to 1"));
    private readonly Option<int> _maxStrikes = new Option<int>("--max-strikes")
    {
        Description = "Missed step deadlines or refused results in a row after which a worker is set aside for the rest of the run",
        DefaultValueFactory = _ => 3,
        HelpName = "N",
    }.WithParser(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 ? (n, null) : (0, "expected a number, 1 or more"));
    private readonly NodeOptionSet _node = new(NodeSettings.DefaultCoordinatorPort);
    private readonly Option<string?> _save = new("--save") { Description = "Write the trained model to this file", HelpName = "PATH" };
    private readonly Option<bool> _quiet = new("--quiet", "-q") { Description = "Print only the final result" };
    private readonly Option<double?> _targetAccuracy = new Option<double?>("--target-accuracy")
    {
        Description = "Stop at the end of the first epoch whose test accuracy reaches this fraction, and print the wall time to it",
        HelpName = "A",
    }.WithParser(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var a) && a is > 0 and <= 1
        ? (a, null) : (null, "expected a fraction in (0, 1]"));
    private readonly Option<bool> _stats = new("--stats") { Description = "After each epoch, print where a step's time went and the bytes serialized per step" };

    public Command Build()
    {
        var command = new Command("train", "Train a network with backpropagation and print loss and accuracy per epoch");
        foreach (var option in _data.All.Concat(_node.All)) command.Options.Add(option);
        foreach (var option in new Option[] { _scale, _hidden, _layers, _activation, _output, _cost, _optimizer, _learningRate, _momentum, _beta1, _beta2, _epsilon, _weightDecay, _warmup, _batchSize, _epochs, _seed, _chunkSize, _threads, _workers, _stepTimeout, _workerTimeout, _cluster, _loopback, _reduce, _checkReplicas, _verifyFraction, _maxStrikes, _targetAccuracy, _save, _quiet, _stats })
            command.Options.Add(option);
        command.Validators.Add(result =>
        {
            if (result.GetResult(_hidden) is not null && result.GetResult(_layers) is not null) result.AddError("--hidden and --layers cannot be used together");
            if (result.GetValue(_cluster) && result.GetValue(_loopback)) result.AddError("--cluster and --loopback cannot be used together");
        });
        command.SetAction((result, cancellation) => RunAsync(result, result.InvocationConfiguration.Output, cancellation));
        return command;
    }

    /// <summary>
    /// Loads and scales the data. Only the scaled sets leave this method: the raw split (as large again)
    /// is garbage once scaled, and would otherwise live as long as the training in RunAsync's state.
    /// The raw training set's hash, which the model file records, is taken here when asked for.
    /// </summary>
    private (DataSet Train, DataSet Test, FeatureScaling Scaling, string Name, string? Hash) LoadData(ParseResult result, bool hashRawData)
    {
        var split = DataSources.Load(_data.Read(result));
        var scaling = FeatureScaling.Fit(result.GetValue(_scale), split.Train);
        return (scaling.Apply(split.Train), scaling.Apply(split.Test), scaling, split.Train.Name, hashRawData ? split.Train.ContentHash : null);
    }

    private async Task<int> RunAsync(ParseResult result, TextWriter output, CancellationToken cancellation)
    {
        var quiet = result.GetValue(_quiet);
        var workers = result.GetValue(_workers);
        var savePath = result.GetValue(_save);
        if (savePath is not null) ModelFile.CheckWritable(savePath);
        var tls = _node.ReadTls(result);
        if (tls is not null && !result.GetValue(_cluster) && !result.GetValue(_loopback))
            throw new InvalidInputException("--tls-cert: workers in this process talk through no network; TLS applies with --cluster or --loopback");
        if (tls is not null) NodeTls.Load(tls); // a bad certificate is found before the data is loaded
        var (train, test, scaling, dataName, dataHash) = LoadData(result, hashRawData: savePath is not null);
        var architecture = BuildArchitecture(result, train);

        var kind = result.GetValue(_optimizer);
        var optimizer = new OptimizerSettings(
            kind,
            result.GetValue(_learningRate) ?? DefaultLearningRate(kind),
            result.GetValue(_momentum), result.GetValue(_beta1), result.GetValue(_beta2), result.GetValue(_epsilon),
            result.GetValue(_weightDecay), result.GetValue(_warmup));
        var problem = optimizer.Validate();
        if (problem is not null) throw new InvalidInputException($"optimizer settings: {problem}");

        var settings = new TrainingSettings(architecture, optimizer, result.GetValue(_batchSize), result.GetValue(_epochs), result.GetValue(_seed), result.GetValue(_chunkSize), result.GetValue(_threads));
        if (!quiet)
        {
            output.WriteLine($"data     {dataName}: {train.Count} training, {test.Count} test samples, {train.FeatureCount} features, {train.ClassCount} classes (scaling {FeatureScaling.Name(scaling.Kind)})");
            output.WriteLine($"network  {architecture} ({architecture.ParameterCount:N0} parameters)");
            var batch = settings.BatchSize > train.Count
                ? $"batch {settings.BatchSize} (more than the {train.Count} training samples: one step per epoch, over all of them)"
                : $"batch {settings.BatchSize}";
            output.WriteLine($"training {OptimizerSettings.Name(kind)} η={optimizer.LearningRate.ToString(CultureInfo.InvariantCulture)}, {batch}, {settings.Epochs} epochs, seed {settings.Seed}, {workers} worker{(workers == 1 ? "" : "s")}");
        }

        var run = new TrainingRun(settings, train, test, scaling);
        var coordinatorSettings = new CoordinatorSettings(
            MinWorkers: workers,
            StepTimeout: TimeSpan.FromSeconds(result.GetValue(_stepTimeout)),
            WorkerWaitTimeout: TimeSpan.FromSeconds(result.GetValue(_workerTimeout)),
            TargetAccuracy: result.GetValue(_targetAccuracy)) {
                Reduce = result.GetValue(_reduce), StateCheckEvery = result.GetValue(_checkReplicas),
                VerifyFraction = result.GetValue(_verifyFraction), MaxStrikes = result.GetValue(_maxStrikes),
            };
        var stats = result.GetValue(_stats);
        Action<EpochReport>? onEpoch = quiet ? null : r =>
        {
            output.WriteLine(Format(r));
            if (stats && r.Timing is { } t) output.WriteLine(FormatTiming(t));
        };
        TrainingFinished finished;
        if (result.GetValue(_cluster))
        {
            var node = _node.Read(result, NodeSettings.CoordinatorRole, coordinator: null, frameBytes: NodeSettings.FrameSettingFor(architecture.ParameterCount));
            if (node.OpenClusterWarning() is { } open) result.InvocationConfiguration.Error.WriteLine(open);
            finished = await TrainingHost.RunClusterAsync(run, node, coordinatorSettings, onEpoch, address =>
            {
                output.WriteLine($"listening {address}; waiting for {workers} worker{(workers == 1 ? "" : "s")}");
                output.WriteLine($"start workers with: backprop-worker --coordinator {node.PublicHost ?? node.Host}:{address.Port} --data {result.GetValue(_data.Data)}");
            }, cancellation).ConfigureAwait(false);
        }
        else if (result.GetValue(_loopback))
        {
            finished = await TrainingHost.RunLoopbackAsync(run, workers, coordinatorSettings, onEpoch, cancellationToken: cancellation, tls: tls).ConfigureAwait(false);
        }
        else
        {
            finished = await TrainingHost.RunLocalAsync(run, workers, coordinatorSettings, onEpoch, cancellationToken: cancellation).ConfigureAwait(false);
        }
        var last = finished.LastEpoch!;

        output.WriteLine($"test accuracy {last.TestAccuracy:F4}, test loss {last.TestLoss:F4}");
        if (result.GetValue(_targetAccuracy) is { } target) output.WriteLine(FormatTarget(target, last));
        var path = savePath;
        if (path is not null)
        {
            var metadata = new Dictionary<string, string>
            {
                ["data"] = dataName,
                ["data.sha256"] = dataHash!,
                ["classes"] = train.ClassCount.ToString(CultureInfo.InvariantCulture),
                ["optimizer"] = OptimizerSettings.Name(kind),
                ["learning-rate"] = optimizer.LearningRate.ToString(CultureInfo.InvariantCulture),
                ["batch-size"] = settings.BatchSize.ToString(CultureInfo.InvariantCulture),
                ["epochs"] = settings.Epochs.ToString(CultureInfo.InvariantCulture),
                ["seed"] = settings.Seed.ToString(CultureInfo.InvariantCulture),
                ["test-accuracy"] = last.TestAccuracy.ToString("F4", CultureInfo.InvariantCulture),
            };
            ModelFile.Save(new Model(architecture, finished.Parameters.Span.ToArray(), scaling, metadata), path);
            output.WriteLine($"model saved to {path}");
        }
        return 0;
    }

    internal static string Format(EpochReport r) =>
        $"epoch {r.Epoch.ToString(CultureInfo.InvariantCulture).PadLeft(r.Epochs.ToString(CultureInfo.InvariantCulture).Length)}/{r.Epochs}" +
        $"  train loss {r.TrainLoss:F4} acc {r.TrainAccuracy:F4}  test loss {r.TestLoss:F4} acc {r.TestAccuracy:F4}" +
        $"  {r.Elapsed.TotalSeconds:F2} s  {r.SamplesPerSecond:N0} samples/s";

    internal static string FormatTiming(StepTiming t) =>
        $"  per step {t.StepMilliseconds:F2} ms: slowest worker compute {t.ComputeMilliseconds:F2}, coordinator {t.CoordinatorMilliseconds:F2}, " +
        $"serialization {t.WireMilliseconds:F2}, waiting {t.WaitingMilliseconds:F2}; {t.BytesPerStep / 1e6:F3} MB serialized";

    internal static string FormatTarget(double target, EpochReport last) => last.TestAccuracy >= target
        ? $"target accuracy {target:F4} reached at epoch {last.Epoch}/{last.Epochs} after {last.SinceStart.TotalSeconds:F2} s (wall time from the first step, evaluations included)"
        : $"target accuracy {target:F4} not reached in {last.Epochs} epochs ({last.SinceStart.TotalSeconds:F2} s)";

    private static float DefaultLearningRate(OptimizerKind kind) => kind switch
    {
        OptimizerKind.Sgd => 0.1f,
        OptimizerKind.Momentum => 0.01f,
        _ => 0.001f,
    };

    private Architecture BuildArchitecture(ParseResult result, DataSet train)
    {
        var cost = result.GetValue(_cost);
        var hidden = result.GetValue(_activation);
        var output = result.GetValue(_output) ?? (cost == Cost.CrossEntropy ? Activation.Softmax : Activation.Logistic);
        if (!Activations.IsHidden(hidden)) throw new InvalidInputException($"--activation {Activations.Name(hidden)}: a hidden layer needs logistic, tanh or relu");
        if (!Costs.Supports(cost, output)) throw new InvalidInputException($"--cost {Costs.Name(cost)} needs a softmax or logistic output, not --output {Activations.Name(output)}");

        var classes = train.ClassCount;
        var outputUnits = output != Activation.Softmax && classes == 2 ? 1 : classes;
        int[] sizes;
        var layers = result.GetValue(_layers);
        if (layers is { Length: > 0 })
        {
            var text = string.Join(',', layers);
            if (layers.Length < 2) throw new InvalidInputException($"--layers {text}: give at least the input and output sizes");
            if (layers[0] != train.FeatureCount)
                throw new InvalidInputException($"--layers {text}: the input layer has {layers[0]} units but {train.Name} has {train.FeatureCount} features per sample");
            var binary = classes == 2 && layers[^1] == 1 && output != Activation.Softmax;
            if (layers[^1] != classes && !binary)
                throw new InvalidInputException($"--layers {text}: the output layer has {layers[^1]} units but {train.Name} has {classes} classes");
            sizes = layers;
        }
        else
        {
            sizes = [train.FeatureCount, .. result.GetValue(_hidden) is { Length: > 0 } h ? h : [64], outputUnits];
        }
        try
        {
            return new Architecture(sizes, hidden, output, cost);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"network {string.Join('-', sizes)}: {e.Message.Split(" (Parameter")[0]}", e);
        }
    }
}
