using System.CommandLine;
using Akka.Actor;
using Backprop.Clustering;
using Backprop.CommandLine;
using Backprop.Data;

namespace Backprop.Worker;

/// <summary>
/// <c>backprop-worker</c>: a worker node. It loads the training data itself, joins the coordinator's
/// cluster, computes gradients for it, and exits when the run is over (or, with --stay, serves the
/// next run and the next coordinator at the same address).
/// </summary>
public sealed class WorkerCommand
{
    private readonly DataOptionSet _data = new();
    private readonly NodeOptionSet _node = new(defaultPort: 0);
    private readonly Option<string?> _coordinator = new("--coordinator", "-c")
    {
        Description = "host:port of the coordinator to join [env BACKPROP_COORDINATOR]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_COORDINATOR") is { Length: > 0 } c ? c : null,
        HelpName = "HOST:PORT",
    };
    private readonly Option<int> _threads = new Option<int>("--threads")
    {
        Description = "Threads for gradient computation (default: every core)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    }.WithParser(Parse.PositiveInt);
    private readonly Option<bool> _stay = new("--stay")
    {
        Description = "Keep serving: after a run, wait for the coordinator's next run, and when the coordinator leaves, for the next coordinator at the same address (default: exit when the run ends)",
    };
    private readonly Option<double> _joinTimeout = new Option<double>("--join-timeout")
    {
        Description = "Seconds to try joining the coordinator before giving up",
        DefaultValueFactory = _ => 60,
    }.WithParser(Parse.PositiveSeconds);

    /// <summary>Runs the worker's command line and returns the exit code (<see cref="ExitCode"/>).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var command = new WorkerCommand();
        var root = new RootCommand("backprop-worker: a worker node that computes gradients for a backprop coordinator");
        foreach (var option in command._data.All.Concat(command._node.All).Concat([command._coordinator, command._threads, command._stay, command._joinTimeout]))
            root.Options.Add(option);
        root.SetAction((result, cancellation) => command.ServeAsync(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellation));
        return ProgramRunner.Run(root, "backprop-worker", args, output, error, cancelOnSignal: false);
    }

    private async Task<int> ServeAsync(ParseResult result, TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var target = result.GetValue(_coordinator) ?? throw new InvalidInputException("--coordinator: which coordinator to join is required (host:port, or BACKPROP_COORDINATOR)");
        var (host, port) = NodeSettings.ParseEndpoint(target, "--coordinator", NodeSettings.DefaultCoordinatorPort);
        var settings = _node.Read(result, NodeSettings.WorkerRole, $"{host}:{port}", frameBytes: null);
        NodeTls.FromConfig(settings.ToConfig()); // a bad certificate is found before the data is loaded
        if (settings.OpenClusterWarning() is { } open) error.WriteLine(open);
        var timeout = TimeSpan.FromSeconds(result.GetValue(_joinTimeout));
        // A host name that does not resolve is most often a typo; say so at once. Not fatal: where workers
        // start before the coordinator's name is published (a cluster scheduler), it may resolve later.
        try
        {
            await System.Net.Dns.GetHostAddressesAsync(host, cancellation).ConfigureAwait(false);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            error.WriteLine($"warning: --coordinator {target}: the host {host} does not resolve ({e.Message}); trying to join for {timeout.TotalSeconds:0.#} s (--join-timeout)");
        }

        var data = new ScaledData(_data.Read(result));
        output.WriteLine($"data     {data.Name}: {data.Count} training samples, {data.FeatureCount} features");
        var fault = WorkerFault.Parse(Environment.GetEnvironmentVariable(WorkerFault.Variable));
        var node = new Session(settings, data, result.GetValue(_threads), result.GetValue(_stay), target, output, error, fault);
        // A staying worker serves one coordinator after another: when its coordinator leaves, the node is
        // started afresh (a node cannot join a new cluster) and waits for the next one at the same address.
        for (var betweenRuns = false; ; betweenRuns = true)
        {
            var (code, rejoin) = await node.ServeAsync(betweenRuns, timeout).ConfigureAwait(false);
            if (!rejoin) return code;
        }
    }

    /// <summary>
    /// The training set, loaded at start (to fail fast on bad data) and scaled for a run; the raw set is
    /// dropped once a scaled copy exists, and loaded again for a later run with another scaling (--stay).
    /// </summary>
    private sealed class ScaledData
    {
        private readonly DataOptions _options;
        private DataSet? _raw;
        private DataSet? _scaled;
        private FeatureScaling? _scaledWith;

        public ScaledData(DataOptions options)
        {
            _options = options;
            _raw = DataSources.Load(options).Train;
            (Name, Count, FeatureCount) = (_raw.Name, _raw.Count, _raw.FeatureCount);
        }

        public string Name { get; }
        public int Count { get; }
        public int FeatureCount { get; }

        public DataSet Prepare(FeatureScaling scaling)
        {
            if (_scaled is null || !SameScaling(scaling, _scaledWith!))
            {
                _scaled = scaling.Apply(_raw ?? DataSources.Load(_options).Train);
                _scaledWith = scaling;
                _raw = null;
            }
            return _scaled;
        }

        private static bool SameScaling(FeatureScaling a, FeatureScaling b) =>
            a.Kind == b.Kind && a.Shift.AsSpan().SequenceEqual(b.Shift) && a.Scale.AsSpan().SequenceEqual(b.Scale);
    }

    /// <summary>How long a leaving worker waits for its actor system to stop.</summary>
    private static readonly TimeSpan ShutdownLimit = TimeSpan.FromSeconds(20);

    /// <summary>One worker node's life: join, serve runs, and leave with the exit code its end calls for.</summary>
    private sealed class Session(NodeSettings settings, ScaledData data, int threads, bool staying, string target, TextWriter output, TextWriter error, WorkerFault? fault)
    {
        public async Task<(int Code, bool Rejoin)> ServeAsync(bool betweenRuns, TimeSpan timeout)
        {
            var exitCode = ExitCode.Ok;
            var rejoin = false;
            var leaving = 0;
            var joined = new TaskCompletionSource();
            var left = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            ActorSystem? system = null;
            void Leave(int code)
            {
                Volatile.Write(ref exitCode, code);
                left.TrySetResult();
                _ = CoordinatedShutdown.Get(system!).Run(CoordinatedShutdown.ClrExitReason.Instance);
            }
            system = WorkerNode.Start(settings, data.Prepare, threads,
                onRunFinished: () =>
                {
                    if (staying)
                    {
                        output.WriteLine("run finished; staying for the next run");
                        return;
                    }
                    if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                    output.WriteLine("run finished; leaving");
                    Leave(ExitCode.Ok);
                },
                onCoordinatorLost: () =>
                {
                    if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                    if (staying)
                    {
                        output.WriteLine($"the coordinator at {target} left; waiting for the next one (--stay)");
                        rejoin = true;
                        Leave(ExitCode.Ok);
                        return;
                    }
                    error.WriteLine($"error: the coordinator at {target} left the cluster");
                    Leave(ExitCode.Failed);
                },
                onRefused: reason =>
                {
                    if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                    error.WriteLine($"error: {reason}");
                    Leave(ExitCode.BadInput);
                },
                betweenRuns: betweenRuns,
                onJoined: () =>
                {
                    output.WriteLine("joined the cluster");
                    joined.TrySetResult();
                },
                fault: fault);

            output.WriteLine($"worker   {Akka.Cluster.Cluster.Get(system).SelfAddress} joining {settings.SeedAddressOn(system)}");
            // The first join gives up after --join-timeout; a staying worker waits for the next coordinator as long as it takes.
            var giveUp = betweenRuns ? Task.Delay(Timeout.Infinite) : Task.Delay(timeout);
            if (await Task.WhenAny(joined.Task, system.WhenTerminated, giveUp).ConfigureAwait(false) != joined.Task && !system.WhenTerminated.IsCompleted)
            {
                error.WriteLine($"error: could not join the coordinator at {target} within {timeout.TotalSeconds:0.#} s");
                await system.Terminate().ConfigureAwait(false);
                return (ExitCode.Failed, false);
            }
            // A computation that never returns (a hung thread) keeps the worker actor, and so the actor
            // system, from stopping: once it is leaving, the node waits a while, then goes anyway.
            var stopped = await Task.WhenAny(system.WhenTerminated, left.Task.ContinueWith(_ => Task.Delay(ShutdownLimit), TaskScheduler.Default).Unwrap()).ConfigureAwait(false);
            if (stopped != system.WhenTerminated && !system.WhenTerminated.IsCompleted)
            {
                error.WriteLine($"warning: the worker did not stop within {ShutdownLimit.TotalSeconds:0} s of leaving (a computation that does not return?); exiting anyway");
                return (Volatile.Read(ref exitCode), false);
            }
            return (Volatile.Read(ref exitCode), Volatile.Read(ref rejoin));
        }
    }
}
