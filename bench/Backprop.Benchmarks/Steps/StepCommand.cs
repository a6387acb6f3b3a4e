using System.CommandLine;
using System.Globalization;
using Backprop.CommandLine;
using Backprop.Data;
using Backprop.Engine;

namespace Backprop.Benchmarks.Steps;

/// <summary>
/// <c>step</c>: training throughput (samples/s of forward + backward + SGD step) of the reference nets
/// on Fashion-MNIST, at 1 thread and at all threads, beside PyTorch running the same nets in the same
/// run (<see cref="PyTorchPeer"/>) when a python with torch is found, and the GFLOP/s reached against
/// the machine's sgemm peak (OpenBLAS 1024³, 1 thread, timed beside every repetition).
/// </summary>
internal sealed class StepCommand
{
    private readonly Option<string> _data = new("--data")
    {
        Description = "Fashion-MNIST: the name fashion-mnist (found like backprop train finds it) or a directory of IDX files",
        DefaultValueFactory = _ => "fashion-mnist",
        HelpName = "NAME|DIR",
    };
    private readonly Option<string> _nets = new("--nets")
    {
        Description = $"Reference nets to run (bench/{ReferenceNets.FileName}), comma-separated, or all ({NetNames()})",
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
        var command = new Command("step", "Measure training throughput of the reference nets, beside PyTorch's and OpenBLAS's when installed");
        foreach (var option in new Option[] { _data, _nets, _threads, _batchSize, _chunkSize, _repetitions, _seconds, _phases, _python })
            command.Options.Add(option);
        command.SetAction((result, _) => Task.FromResult(Run(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error)));
        return command;
    }

    private static string NetNames()
    {
        try
        {
            return ReferenceNets.Names;
        }
        catch (InvalidInputException)
        {
            return $"none found: {ReferenceNets.FileName} is missing";
        }
    }

    private int Run(ParseResult result, TextWriter output, TextWriter error)
    {
        var batch = result.GetValue(_batchSize);
        var chunk = result.GetValue(_chunkSize);
        var repetitions = result.GetValue(_repetitions);
        var seconds = result.GetValue(_seconds);
        if (batch < 1 || chunk < 1 || repetitions < 1 || !(seconds > 0)) throw new InvalidInputException("--batch-size, --chunk-size, --repetitions and --seconds must be positive");
        var threads = (result.GetValue(_threads) is { Length: > 0 } given ? given : [1, Environment.ProcessorCount]).Distinct().Order().ToArray();
        var nets = ReferenceNets.Select(result.GetValue(_nets)!, "--nets");
        var dataName = result.GetValue(_data)!;
        var idxDirectory = dataName.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase) ? DataSources.FindFashionMnist() : dataName;
        if (!Directory.Exists(idxDirectory)) throw new InvalidInputException($"--data {dataName}: not a directory of Fashion-MNIST IDX files");
        var split = DataSources.Load(new DataOptions(idxDirectory));
        var train = FeatureScaling.Fit(ScalingKind.Max, split.Train).Apply(split.Train);
        if (train.FeatureCount != 784 || train.ClassCount != 10) throw new InvalidInputException($"--data {dataName}: expected 784 features and 10 classes (Fashion-MNIST)");
        if (batch > train.Count) throw new InvalidInputException($"--batch-size {batch}: more than the {train.Count} training samples of {dataName}");

        var report = new StepReport(Tables.ConsoleFor(output));
        var sgemm = OpenBlasSides.BestOfNow();
        var (peer, pytorch) = PyTorchPeer.Open(result.GetValue(_python), idxDirectory, batch, error);
        using (peer)
        {
            report.Facts(
                $"{Environment.ProcessorCount} logical processors, {Gemm.KernelDescription}, .NET {Environment.Version}",
                $"{idxDirectory}: {train.Count} training samples; batch {batch}, chunk {chunk}; {repetitions} repetitions of about {seconds.ToString(CultureInfo.InvariantCulture)} s after warm-up",
                sgemm, pytorch, peer is not null);
            var rows = new List<StepRow>();
            foreach (var net in nets)
            {
                var flops = StepFlops.PerSample(net.Architecture);
                var floor = OpenBlas.IsAvailable ? new GemmFloor(net.Architecture, batch) : null;
                var peak = OpenBlas.IsAvailable ? OpenBlasSides.SgemmPeak(flops, batch) : null;
                foreach (var t in threads)
                {
                    error.WriteLine($"measuring {net.Name} on {t} thread{(t == 1 ? "" : "s")}…");
                    var m = Measurement.Take(net.Architecture, train, batch, chunk, t, repetitions, seconds,
                        peer is null ? null : steps => peer.Rate(net.Name, t, steps), floor is null || t != 1 ? null : floor.Rate, peak);
                    rows.Add(new StepRow(net, t, flops, m));
                }
            }
            report.Throughput(rows);
            report.GemmsAlone(rows);
        }
        if (result.GetValue(_phases))
        {
            foreach (var net in nets)
            {
                error.WriteLine($"phases of {net.Name} on 1 thread…");
                report.Phases(PhaseProfile.Take(net.Architecture, train, batch, chunk, seconds));
            }
        }
        return ExitCode.Ok;
    }
}
