using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Backprop.CommandLine;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Coordinator.Cli;

/// <summary>
/// <c>backprop bench</c>: training throughput (samples/s of forward + backward + SGD step) of the three
/// reference nets on Fashion-MNIST, at 1 thread and at all threads, beside PyTorch running the same
/// nets in the same run (bench/pytorch_bench.py) when a python with torch is found, and the GFLOP/s
/// reached against the machine's sgemm peak (OpenBLAS 1024³, 1 thread, timed beside every repetition).
/// </summary>
internal sealed class BenchCommand
{
    /// <summary>The reference nets of the engine issue: name, sizes, hidden activation, output activation, cost.</summary>
    internal static readonly (string Name, Architecture Architecture)[] ReferenceNets =
    [
        ("784-30-10", new Architecture([784, 30, 10], Activation.Logistic, Activation.Logistic, Cost.Quadratic)),
        ("784-256-128-10", new Architecture([784, 256, 128, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy)),
        ("784-1024-1024-10", new Architecture([784, 1024, 1024, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy)),
    ];

    private readonly Option<string> _data = new("--data")
    {
        Description = "Fashion-MNIST: the name fashion-mnist (found like train does) or a directory of IDX files",
        DefaultValueFactory = _ => "fashion-mnist",
        HelpName = "NAME|DIR",
    };
    private readonly Option<string> _nets = new("--nets")
    {
        Description = $"Reference nets to run, comma-separated, or all ({string.Join(", ", ReferenceNets.Select(n => n.Name))})",
        DefaultValueFactory = _ => "all",
    };
    private readonly Option<int[]?> _threads = new Option<int[]?>("--threads")
    {
        Description = "Thread counts, comma-separated (default: 1 and all processors)",
        HelpName = "N,N,...",
        Arity = ArgumentArity.ExactlyOne,
    }.WithParser(Parse.ThreadCounts);
    private readonly Option<int> _batchSize = new("--batch-size") { Description = "Samples per step", DefaultValueFactory = _ => 256 };
    private readonly Option<int> _chunkSize = new("--chunk-size") { Description = "Samples per chunk", DefaultValueFactory = _ => 16 };
    private readonly Option<int> _repetitions = new("--repetitions") { Description = "Timed repetitions per measurement (the median is reported)", DefaultValueFactory = _ => 7 };
    private readonly Option<double> _seconds = new("--seconds") { Description = "Approximate length of one repetition", DefaultValueFactory = _ => 1.0 };
    private readonly Option<bool> _phases = new("--phases")
    {
        Description = "Also show where the time of a 1-thread training step goes, phase by phase and layer by layer",
    };
    private readonly Option<string?> _python = new("--python")
    {
        Description = "Python with torch for the PyTorch baseline (default: python3, then /usr/bin/python3); none skips it",
        HelpName = "PATH|none",
    };

    public Command Build()
    {
        var command = new Command("bench", "Measure training throughput of the reference nets, beside PyTorch's and OpenBLAS's when installed");
        foreach (var option in new Option[] { _data, _nets, _threads, _batchSize, _chunkSize, _repetitions, _seconds, _phases, _python })
            command.Options.Add(option);
        command.SetAction((result, _) => Task.FromResult(Run(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error)));
        return command;
    }

    private int Run(ParseResult result, TextWriter output, TextWriter error)
    {
        var batch = result.GetValue(_batchSize);
        var chunk = result.GetValue(_chunkSize);
        var repetitions = result.GetValue(_repetitions);
        var seconds = result.GetValue(_seconds);
        if (batch < 1 || chunk < 1 || repetitions < 1 || !(seconds > 0)) throw new InvalidInputException("--batch-size, --chunk-size, --repetitions and --seconds must be positive");
        var threads = (result.GetValue(_threads) is { Length: > 0 } given ? given : [1, Environment.ProcessorCount]).Distinct().Order().ToArray();
        var nets = SelectNets(result.GetValue(_nets)!);
        var dataName = result.GetValue(_data)!;
        var idxDirectory = dataName.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase) ? DataSources.FindFashionMnist() : dataName;
        if (!Directory.Exists(idxDirectory)) throw new InvalidInputException($"--data {dataName}: not a directory of Fashion-MNIST IDX files");
        var split = DataSources.Load(new DataOptions(idxDirectory));
        var train = FeatureScaling.Fit(ScalingKind.Max, split.Train).Apply(split.Train);
        if (train.FeatureCount != 784 || train.ClassCount != 10) throw new InvalidInputException($"--data {dataName}: expected 784 features and 10 classes (Fashion-MNIST)");
        if (batch > train.Count) throw new InvalidInputException($"--batch-size {batch}: more than the {train.Count} training samples of {dataName}");

        output.WriteLine($"machine  {Environment.ProcessorCount} logical processors, {Gemm.KernelDescription}, .NET {Environment.Version}");
        output.WriteLine($"data     {idxDirectory}: {train.Count} training samples; batch {batch}, chunk {chunk}; {repetitions} repetitions of about {seconds.ToString(CultureInfo.InvariantCulture)} s after warm-up");
        PrintSgemm(output);
        var python = result.GetValue(_python);
        var torch = python == "none" ? null : FindTorch(python, output);
        var script = torch is null ? null : FindScript();
        if (torch is not null && script is null) output.WriteLine("pytorch  bench/pytorch_bench.py not found (run from the repository); skipped");
        using var peer = torch is not null && script is not null ? PyTorchPeer.Start(torch, script, idxDirectory, batch, error) : null;
        var others = new[]
        {
            peer is null ? null : "PyTorch's",
            OpenBlas.IsAvailable ? "the OpenBLAS GEMMs alone (1-thread rows)" : null,
            OpenBlas.IsAvailable ? "OpenBLAS sgemm 1024³ (1 thread)" : null,
        }.OfType<string>().ToArray();
        if (others.Length > 0)
        {
            output.WriteLine($"pairs    each of our repetitions is timed right beside one of each: {string.Join("; ", others)};");
            output.WriteLine("         the order rotates, and a ratio is the median of the repetitions' ratios");
        }
        output.WriteLine();
        output.WriteLine($"{"net",-48} {"threads",7} {"ours samples/s",15} {"GFLOP/s",8} {"of t·peak",9} {"PyTorch samples/s",18} {"ours/PyTorch",13} {"pair range",12}");

        var floors = new List<string>();
        foreach (var (name, architecture) in nets)
        {
            var flops = FlopsPerSample(architecture);
            var floor = OpenBlas.IsAvailable ? new GemmFloor(architecture, batch) : null;
            var sgemm = OpenBlas.IsAvailable ? SgemmPeak(flops, batch) : null;
            for (var i = 0; i < threads.Length; i++)
            {
                var t = threads[i];
                var m = Measure(architecture, train, batch, chunk, t, repetitions, seconds,
                    peer is null ? null : steps => peer.Rate(name, t, steps), floor is null || t != 1 ? null : floor.Rate, sgemm);
                var ours = m.OursMedian;
                var theirs = m.MedianOf(PeerSide);
                var ratios = m.OursOver(PeerSide);
                var ofPeak = m.OursOver(PeakSide);
                if (floor is not null && t == 1)
                {
                    var theirsOfPeak = m.Over(PeerSide, PeakSide);
                    floors.Add($"{architecture,-48} {t,7} {m.MedianOf(GemmsSide),22:N0} {Format(Median(m.OursOver(GemmsSide))),11} " +
                        $"{(m.Over(PeerSide, GemmsSide) is { Length: > 0 } r ? Format(Median(r)) : "-"),14} " +
                        $"{m.MedianOf(PeakSide) * flops / 1e9,13:F1} {Median(m.Over(GemmsSide, PeakSide)),12:P0} " +
                        $"{(theirsOfPeak.Length == 0 ? "-" : Median(theirsOfPeak).ToString("P0", CultureInfo.InvariantCulture)),14}");
                }
                var gflops = flops * ours / 1e9;
                var ofTPeak = ofPeak.Length == 0 ? "-" : (Median(ofPeak) / t).ToString("P0", CultureInfo.InvariantCulture);
                var pytorch = double.IsNaN(theirs) ? "-" : theirs.ToString("N0", CultureInfo.InvariantCulture);
                var ratio = ratios.Length == 0 ? "-" : Format(Median(ratios));
                var range = ratios.Length == 0 ? "-" : $"{Format(ratios.Min())}–{Format(ratios.Max())}";
                output.WriteLine($"{(i == 0 ? architecture.ToString() : ""),-48} {t,7} {ours,15:N0} {gflops,8:F1} {ofTPeak,9} {pytorch,18} {ratio,13} {range,12}");
            }
        }
        output.WriteLine();
        output.WriteLine("samples/s: one step = gather the batch, forward, backward, SGD update (medians of the repetitions); GFLOP/s counts");
        output.WriteLine("2·n_in·n_out per layer for the forward pass and the weight gradient, and again for the backward error of every layer");
        output.WriteLine("but the first; of t·peak: our GFLOP/s over t times OpenBLAS's 1-thread sgemm 1024³, timed in the same repetition");
        output.WriteLine("(median of the repetitions).");
        if (result.GetValue(_phases))
        {
            foreach (var (_, architecture) in nets) PrintPhases(architecture, train, batch, chunk, seconds, output);
        }
        if (floors.Count > 0)
        {
            output.WriteLine();
            output.WriteLine($"{"GEMMs alone",-48} {"threads",7} {"GEMMs-only samples/s",22} {"ours/GEMMs",11} {"PyTorch/GEMMs",14} " +
                $"{"peak GFLOP/s",13} {"GEMMs/peak",12} {"PyTorch/peak",14}");
            foreach (var line in floors) output.WriteLine(line);
            output.WriteLine();
            output.WriteLine("GEMMs alone: only the step's matrix products (o·Wᵀ and Δᵀ·o for every layer, Δ·W for every layer but the first) in");
            output.WriteLine("OpenBLAS cblas_sgemm on 1 thread, timed in the same repetitions as the 1-thread rows above: how fast a step could be if");
            output.WriteLine("it were nothing but OpenBLAS products. peak: OpenBLAS sgemm 1024³ on 1 thread in the same repetitions (median);");
            output.WriteLine("the ratios are medians of each repetition's ratio.");
        }
        return ExitCode.Ok;
    }

    /// <summary>
    /// Where the time of a 1-thread step of <paramref name="architecture"/> goes: the engine's phases, the
    /// SGD update, the rest; beside each product, the same product in OpenBLAS (when found), timed in
    /// steps that alternate with ours.
    /// </summary>
    private static void PrintPhases(Architecture architecture, DataSet train, int batch, int chunk, double seconds, TextWriter output)
    {
        var L = architecture.LayerCount;
        var phases = new PhaseTimes(L);
        var loop = new StepLoop(architecture, train, batch, chunk, threads: 1);
        loop.Engine.Phases = phases;
        var floor = OpenBlas.IsAvailable ? new GemmFloor(architecture, batch) : null;
        var blas = new PhaseTimes(L);
        // Warm up for a while (the engine's code reaches its optimized tier), then measure afresh.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < seconds)
        {
            loop.Step();
            floor?.Step(null);
        }
        phases.Clear();
        loop.Update = TimeSpan.Zero;
        var steps = 0;
        var ours = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        for (; clock.Elapsed.TotalSeconds < 2 * seconds || steps < 5; steps++)
        {
            var start = Stopwatch.GetTimestamp();
            loop.Step();
            ours += Stopwatch.GetElapsedTime(start);
            floor?.Step(blas);
        }
        var total = ours.TotalMilliseconds / steps;
        var update = loop.Update;

        output.WriteLine();
        output.WriteLine($"phases   {architecture}: one step on 1 thread, batch {batch}, chunk {chunk}, mean of {steps} steps" +
            (floor is null ? "" : "; OpenBLAS: the same product alone, in steps alternating with ours"));
        output.WriteLine($"         {"",-40} {"ours",11} {"of step",7}" + (floor is null ? "" : $" {"OpenBLAS",11} {"ours/OpenBLAS",14}"));
        var accounted = 0.0;
        void Line(string what, double ms, double? openBlas = null)
        {
            accounted += ms;
            var beside = openBlas is { } b && floor is not null ? $" {b,8:F2} ms {ms / b,14:F2}" : "";
            output.WriteLine($"         {what,-40} {ms,8:F2} ms {ms / total,7:P1}{beside}");
        }
        double Ms(EnginePhase phase, int layer) => phases[phase, layer].TotalMilliseconds / steps;
        double Blas(EnginePhase phase, int layer) => blas[phase, layer].TotalMilliseconds / steps;
        Line("pack the weights into panels", Ms(EnginePhase.PackWeights, 0));
        for (var l = 0; l < L; l++) Line($"forward o{l + 1} = f(o{l}·W{l}ᵀ + b{l})", Ms(EnginePhase.Forward, l), Blas(EnginePhase.Forward, l));
        Line("output layer: a, C(x), Δ", Ms(EnginePhase.OutputRows, 0));
        for (var l = L - 1; l >= 0; l--)
        {
            Line($"Δ{l}ᵀ tiles and ∂C/∂b{l}", Ms(EnginePhase.DeltaTilesAndBias, l));
            Line($"∂C/∂W{l} = Δ{l}ᵀ·o{l}", Ms(EnginePhase.WeightGradient, l), Blas(EnginePhase.WeightGradient, l));
            if (l > 0) Line($"Δ{l - 1} = (Δ{l}·W{l}) ⊙ f'(o{l})", Ms(EnginePhase.BackwardErrors, l), Blas(EnginePhase.BackwardErrors, l));
        }
        Line("SGD update", update.TotalMilliseconds / steps);
        output.WriteLine($"         {"the rest (batch order, labels, loss tree)",-40} {total - accounted,8:F2} ms {(total - accounted) / total,7:P1}");
        var products = floor is null ? "" :
            $" {(blas.Total(EnginePhase.Forward) + blas.Total(EnginePhase.WeightGradient) + blas.Total(EnginePhase.BackwardErrors)).TotalMilliseconds / steps,8:F2} ms (products)";
        output.WriteLine($"         {"step",-40} {total,8:F2} ms {"",7}{products}");
    }

    private static string Format(double ratio) => ratio.ToString("F2", CultureInfo.InvariantCulture);

    private static (string Name, Architecture Architecture)[] SelectNets(string text)
    {
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return ReferenceNets;
        var names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var selected = new List<(string, Architecture)>();
        foreach (var name in names)
        {
            var match = ReferenceNets.Where(n => n.Name == name).ToArray();
            if (match.Length == 0) throw new InvalidInputException($"--nets {name}: expected one of {string.Join(", ", ReferenceNets.Select(n => n.Name))} or all");
            selected.Add(match[0]);
        }
        return [.. selected];
    }

    /// <summary>Multiply-adds × 2 of one training sample: forward, weight gradient, and the backward error below every layer but the first.</summary>
    internal static double FlopsPerSample(Architecture architecture)
    {
        double flops = 0;
        for (var l = 0; l < architecture.LayerCount; l++)
        {
            double weights = architecture.WeightCount(l);
            flops += 2 * weights + 2 * weights + (l > 0 ? 2 * weights : 0);
        }
        return flops;
    }

    /// <summary>The sides timed beside ours in every repetition, by their index in <see cref="Measurement.Others"/>.</summary>
    internal const int PeerSide = 0, GemmsSide = 1, PeakSide = 2;

    /// <summary>
    /// The rates of each repetition, in samples/s: ours, and each other side's (null where it was not
    /// timed; a side that failed has NaN). Ratios are taken repetition by repetition.
    /// </summary>
    internal sealed record Measurement(double[] Ours, double[]?[] Others)
    {
        /// <summary>The median of our repetitions.</summary>
        public double OursMedian => Median(Ours);

        /// <summary>The median of a side's repetitions, NaN when it was not timed or failed.</summary>
        public double MedianOf(int side) => Usable(Others[side]) is { } rates ? Median(rates) : double.NaN;

        /// <summary>Ours over a side, each repetition (empty when the side was not timed or failed).</summary>
        public double[] OursOver(int side) => Ratios(Ours, Others[side]);

        /// <summary>One side over another, each repetition (empty when either was not timed or failed).</summary>
        public double[] Over(int top, int bottom) => Ratios(Others[top], Others[bottom]);

        private static double[]? Usable(double[]? rates) => rates is null || rates.Any(double.IsNaN) ? null : rates;

        private static double[] Ratios(double[]? top, double[]? bottom) =>
            Usable(top) is { } t && Usable(bottom) is { } b ? [.. t.Zip(b, (x, y) => x / y)] : [];
    }

    /// <summary>
    /// Samples/s of engine.Gradient + SGD step over batches of a shuffled epoch order, in
    /// <paramref name="repetitions"/> repetitions. Each repetition of ours is timed back to back with one
    /// of every other side (steps → that side's samples/s over that many steps; indexed as
    /// <see cref="PeerSide"/>, <see cref="GemmsSide"/>, <see cref="PeakSide"/>; null: not timed), in an
    /// order that rotates from repetition to repetition.
    /// </summary>
    internal static Measurement Measure(
        Architecture architecture, DataSet train, int batch, int chunk, int threads, int repetitions, double seconds,
        params Func<int, double>?[] others)
    {
        var loop = new StepLoop(architecture, train, batch, chunk, threads);
        double Time(int steps)
        {
            var clock = Stopwatch.StartNew();
            for (var s = 0; s < steps; s++) loop.Step();
            return steps * batch / clock.Elapsed.TotalSeconds;
        }
        int StepsFor(double rate) => Math.Max(5, (int)(seconds * rate / batch));

        // The sides of a repetition: ours first in the list; each is sized from a short probe, so every
        // side takes about the same time, then warmed up.
        var sides = new List<(Func<int, double> Rate, int Slot)> { (Time, -1) };
        for (var i = 0; i < others.Length; i++)
        {
            if (others[i] is { } side) sides.Add((side, i));
        }
        var steps = new int[sides.Count];
        for (var i = 0; i < sides.Count; i++)
        {
            sides[i].Rate(3);
            steps[i] = StepsFor(sides[i].Rate(5));
            sides[i].Rate(Math.Max(5, steps[i] / 5));
        }
        var rates = new double[sides.Count][];
        for (var i = 0; i < sides.Count; i++) rates[i] = new double[repetitions];
        for (var r = 0; r < repetitions; r++)
        {
            // Rotate who goes first, so a machine that drifts in one direction favours no side.
            for (var j = 0; j < sides.Count; j++)
            {
                var i = (r + j) % sides.Count;
                rates[i][r] = sides[i].Rate(steps[i]);
            }
        }
        var byIndex = new double[]?[others.Length];
        for (var i = 1; i < sides.Count; i++) byIndex[sides[i].Slot] = rates[i];
        return new Measurement(rates[0], byIndex);
    }

    /// <summary>
    /// A side that multiplies 1024 × 1024 matrices in OpenBLAS on 1 thread, for as many flops as
    /// <c>steps</c> training steps of <paramref name="flopsPerSample"/> × <paramref name="batch"/>, and
    /// gives its rate in those samples/s: ours over it is our GFLOP/s over the sgemm peak of the moment.
    /// </summary>
    internal static Func<int, double> SgemmPeak(double flopsPerSample, int batch)
    {
        const int n = SgemmSize;
        var (a, b, c) = SgemmOperands();
        const double perMultiply = 2.0 * n * n * n;
        return steps =>
        {
            OpenBlas.SetThreads(1);
            var multiplies = Math.Max(1, (int)Math.Round(steps * batch * flopsPerSample / perMultiply));
            var clock = Stopwatch.StartNew();
            for (var m = 0; m < multiplies; m++) OpenBlas.Multiply(a, b, c, n, n, n);
            return multiplies * perMultiply / flopsPerSample / clock.Elapsed.TotalSeconds;
        };
    }

    /// <summary>The side of the square sgemm that stands for the machine's peak.</summary>
    private const int SgemmSize = 1024;

    /// <summary>A, B (random in [−0.5, 0.5)) and C for a <see cref="SgemmSize"/>² product.</summary>
    private static (float[] A, float[] B, float[] C) SgemmOperands()
    {
        const int n = SgemmSize;
        var random = new Random(1);
        var a = new float[n * n];
        var b = new float[n * n];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = (float)random.NextDouble() - 0.5f;
            b[i] = (float)random.NextDouble() - 0.5f;
        }
        return (a, b, new float[n * n]);
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Prints OpenBLAS's best 1-thread sgemm GFLOP/s at 1024³ now (when OpenBLAS is present), with ours beside it.</summary>
    private static void PrintSgemm(TextWriter output)
    {
        const int n = SgemmSize;
        var (a, b, c) = SgemmOperands();
        var ours = BestGflops(() => Gemm.Multiply(a, b, c, n, n, n), 2.0 * n * n * n);
        if (!OpenBlas.IsAvailable)
        {
            output.WriteLine($"sgemm    OpenBLAS not found: no peak to compare with; our Gemm.Multiply 1024³ on 1 thread: {ours:F1} GFLOP/s");
            return;
        }
        OpenBlas.SetThreads(1);
        var peak = BestGflops(() => OpenBlas.Multiply(a, b, c, n, n, n), 2.0 * n * n * n);
        output.WriteLine($"sgemm    1024³ on 1 thread, best of 15 now: OpenBLAS cblas_sgemm {peak:F1} GFLOP/s ({OpenBlas.Configuration}), our Gemm.Multiply {ours:F1} GFLOP/s;");
        output.WriteLine("         the peak each row is held to is OpenBLAS's, timed again beside each of its repetitions");
    }

    private static double BestGflops(Action multiply, double flops)
    {
        multiply();
        var best = double.MaxValue;
        for (var r = 0; r < 15; r++)
        {
            var clock = Stopwatch.StartNew();
            multiply();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return flops / best / 1e9;
    }

    /// <summary>A python that can import torch: the one named, else python3, else /usr/bin/python3.</summary>
    private static string? FindTorch(string? python, TextWriter output)
    {
        foreach (var candidate in python is null ? ["python3", "/usr/bin/python3"] : new[] { python })
        {
            var version = RunPython(candidate, ["-c", "import torch; print(torch.__version__)"], TimeSpan.FromMinutes(1), out var exitCode);
            if (exitCode != 0) continue;
            output.WriteLine($"pytorch  {candidate}: torch {version.Trim()}");
            return candidate;
        }
        output.WriteLine($"pytorch  no python with torch found ({python ?? "python3, /usr/bin/python3"}): PyTorch columns skipped");
        return null;
    }

    private static string? FindScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var path = Path.Combine(dir.FullName, "bench", "pytorch_bench.py");
                if (File.Exists(path)) return path;
            }
        }
        return null;
    }

    /// <summary>
    /// Training steps as the bench times them: engine.Gradient + SGD update over batches of a shuffled
    /// epoch order (a new order each epoch), with the time spent in the update kept apart.
    /// </summary>
    private sealed class StepLoop(Architecture architecture, DataSet train, int batch, int chunk, int threads)
    {
        private readonly float[] _θ = Initialization.Create(architecture, seed: 1);
        private readonly Optimizer _optimizer = Optimizer.Create(architecture, new OptimizerSettings(OptimizerKind.Sgd, LearningRate: 0.01f));
        private readonly GradientSum _sum = new(architecture.ParameterCount);
        private int[] _order = Shuffling.Permutation(train.Count, 1, 0);
        private int _epoch, _position;

        public BatchEngine Engine { get; } = new(architecture, chunk, threads);

        /// <summary>Time spent in the SGD update so far.</summary>
        public TimeSpan Update { get; set; }

        public void Step()
        {
            if (_position + batch > train.Count)
            {
                _order = Shuffling.Permutation(train.Count, 1, ++_epoch);
                _position = 0;
            }
            Engine.Gradient(_θ, train, _order.AsSpan(_position, batch), _sum);
            var start = Stopwatch.GetTimestamp();
            _optimizer.Step(_θ, _sum.Values, _sum.SampleCount);
            Update += Stopwatch.GetElapsedTime(start);
            _position += batch;
        }
    }

    /// <summary>
    /// The products of one training step of an architecture at a batch size, in OpenBLAS and nothing
    /// else: o_l·W_lᵀ and Δ_lᵀ·o_l for every layer, Δ_l·W_l for every layer but the first (the same count
    /// as <see cref="FlopsPerSample"/>), on buffers of the step's shapes.
    /// </summary>
    private sealed class GemmFloor
    {
        private readonly int[] _sizes;
        private readonly int _batch;
        private readonly float[][] _outputs, _weights, _deltas, _gradients;

        public GemmFloor(Architecture architecture, int batch)
        {
            _sizes = [.. architecture.Sizes];
            _batch = batch;
            var L = _sizes.Length - 1;
            var random = new Random(1);
            float[] Values(long count)
            {
                var values = new float[count];
                for (var i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble() - 0.5f;
                return values;
            }
            _outputs = [.. Enumerable.Range(0, L + 1).Select(l => Values((long)batch * _sizes[l]))];
            _weights = [.. Enumerable.Range(0, L).Select(l => Values((long)_sizes[l] * _sizes[l + 1]))];
            _deltas = [.. Enumerable.Range(0, L).Select(l => Values((long)batch * _sizes[l + 1]))];
            _gradients = [.. Enumerable.Range(0, L).Select(l => new float[(long)_sizes[l] * _sizes[l + 1]])];
        }

        /// <summary>
        /// Samples/s of <paramref name="steps"/> steps' products on one OpenBLAS thread. (Only one: OpenBLAS's
        /// pthreads keep spinning for a while after a call, and would slow whatever is timed next.)
        /// </summary>
        public double Rate(int steps)
        {
            var clock = Stopwatch.StartNew();
            for (var s = 0; s < steps; s++) Step(null);
            return steps * _batch / clock.Elapsed.TotalSeconds;
        }

        /// <summary>One step's products on one OpenBLAS thread; with <paramref name="times"/>, each product's time is added to it.</summary>
        public void Step(PhaseTimes? times)
        {
            OpenBlas.SetThreads(1);
            var L = _sizes.Length - 1;
            var since = Stopwatch.GetTimestamp();
            for (var l = 0; l < L; l++)
            {
                OpenBlas.Multiply(_outputs[l], _weights[l], _outputs[l + 1], _batch, _sizes[l + 1], _sizes[l], transposeA: false, transposeB: true);
                if (times is not null) since = times.Add(EnginePhase.Forward, l, since);
            }
            for (var l = L - 1; l >= 0; l--)
            {
                OpenBlas.Multiply(_deltas[l], _outputs[l], _gradients[l], _sizes[l + 1], _sizes[l], _batch, transposeA: true, transposeB: false);
                if (times is not null) since = times.Add(EnginePhase.WeightGradient, l, since);
                if (l == 0) continue;
                OpenBlas.Multiply(_deltas[l], _weights[l], _deltas[l - 1], _batch, _sizes[l], _sizes[l + 1], transposeA: false, transposeB: false);
                if (times is not null) since = times.Add(EnginePhase.BackwardErrors, l, since);
            }
        }
    }

    /// <summary>
    /// bench/pytorch_bench.py --serve: one python process for the whole run that times PyTorch's steps on
    /// request, so its repetitions can sit right beside ours. After a failure every answer is NaN.
    /// </summary>
    private sealed class PyTorchPeer : IDisposable
    {
        private readonly Process _process;
        private readonly TextWriter _error;
        private readonly string _script;
        private bool _failed;

        private PyTorchPeer(Process process, string script, TextWriter error)
        {
            _process = process;
            _script = script;
            _error = error;
        }

        public static PyTorchPeer? Start(string python, string script, string idxDirectory, int batch, TextWriter error)
        {
            var start = new ProcessStartInfo(python)
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false,
            };
            foreach (var argument in new[] { script, "--data", idxDirectory, "--batch", batch.ToString(CultureInfo.InvariantCulture), "--serve" })
                start.ArgumentList.Add(argument);
            var process = Process.Start(start)!;
            var peer = new PyTorchPeer(process, script, error);
            // The first line describes torch and its BLAS; it arrives once the data is loaded.
            if (peer.ReadLine() is not null) return peer;
            peer.Dispose();
            return null;
        }

        /// <summary>PyTorch's samples/s over <paramref name="steps"/> steps of the net, or NaN if the script failed.</summary>
        public double Rate(string net, int threads, int steps)
        {
            if (_failed) return double.NaN;
            _process.StandardInput.WriteLine(JsonSerializer.Serialize(new { net, threads, steps }));
            _process.StandardInput.Flush();
            var line = ReadLine();
            if (line is null) return double.NaN;
            try
            {
                using var json = JsonDocument.Parse(line);
                return json.RootElement.GetProperty("samples_per_second").GetDouble();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                Fail($"unexpected answer {line}");
                return double.NaN;
            }
        }

        private string? ReadLine()
        {
            var line = _process.StandardOutput.ReadLine();
            if (line is null) Fail($"exited (code {(_process.WaitForExit(10_000) ? _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "?")})");
            return line;
        }

        private void Fail(string what)
        {
            if (!_failed) _error.WriteLine($"warning: {_script} {what}; PyTorch columns left empty from here on");
            _failed = true;
        }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.Close(); // the script ends at the end of its input
                if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            _process.Dispose();
        }
    }

    private static string RunPython(string python, IEnumerable<string> arguments, TimeSpan timeout, out int exitCode)
    {
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        try
        {
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                exitCode = -1;
                return "";
            }
            exitCode = process.ExitCode;
            _ = stderr.Result;
            return stdout;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            exitCode = -1; // no such program
            return "";
        }
    }
}
