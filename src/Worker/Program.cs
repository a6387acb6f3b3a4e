using System.CommandLine;
using Akka.Actor;
using Backprop;
using Backprop.Clustering;
using Backprop.CommandLine;
using Backprop.Data;
using Backprop.Worker;

// backprop-worker: a worker node. It loads the training data itself, joins the coordinator's
// cluster, computes gradients for it, and exits when the run is over (or, with --stay, serves the
// next run and the next coordinator at the same address).

var data = new DataOptionSet();
var node = new NodeOptionSet(defaultPort: 0);
var coordinator = new Option<string?>("--coordinator", "-c")
{
    Description = "host:port of the coordinator to join [env BACKPROP_COORDINATOR]",
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_COORDINATOR") is { Length: > 0 } c ? c : null,
    HelpName = "HOST:PORT",
};
var threads = new Option<int>("--threads")
{
    Description = "Threads for gradient computation (default: every core)",
    DefaultValueFactory = _ => Environment.ProcessorCount,
}.WithParser(Parse.PositiveInt);
var stay = new Option<bool>("--stay")
{
    Description = "Keep serving: after a run, wait for the coordinator's next run, and when the coordinator leaves, for the next coordinator at the same address (default: exit when the run ends)",
};
var joinTimeout = new Option<double>("--join-timeout")
{
    Description = "Seconds to try joining the coordinator before giving up",
    DefaultValueFactory = _ => 60,
}.WithParser(Parse.PositiveSeconds);

var root = new RootCommand("backprop-worker: a worker node that computes gradients for a backprop coordinator");
foreach (var option in data.All.Concat(node.All).Concat([coordinator, threads, stay, joinTimeout])) root.Options.Add(option);

var result = root.Parse(args);
if (result.Errors.Count > 0)
{
    foreach (var e in result.Errors) Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine("Run 'backprop-worker --help' for the options.");
    return 2;
}
if (result.Action is System.CommandLine.Help.HelpAction)
{
    return result.Invoke();
}

try
{
    var target = result.GetValue(coordinator) ?? throw new InvalidInputException("--coordinator: which coordinator to join is required (host:port, or BACKPROP_COORDINATOR)");
    var (host, port) = NodeSettings.ParseEndpoint(target, "--coordinator", NodeSettings.DefaultCoordinatorPort);
    var settings = node.Read(result, "worker", $"{host}:{port}", frameBytes: null);
    var timeout = TimeSpan.FromSeconds(result.GetValue(joinTimeout));
    // A host name that does not resolve is most often a typo; say so at once. Not fatal: where workers
    // start before the coordinator's name is published (a cluster scheduler), it may resolve later.
    try
    {
        await System.Net.Dns.GetHostAddressesAsync(host);
    }
    catch (System.Net.Sockets.SocketException e)
    {
        Console.Error.WriteLine($"warning: --coordinator {target}: the host {host} does not resolve ({e.Message}); trying to join for {timeout.TotalSeconds:0.#} s (--join-timeout)");
    }

    // The raw training set is loaded now (to fail fast on bad data) and dropped once a run's scaled
    // copy exists; a later run with another scaling (--stay) loads it again.
    var dataOptions = data.Read(result);
    DataSet? raw = DataSources.Load(dataOptions).Train;
    Console.WriteLine($"data     {raw.Name}: {raw.Count} training samples, {raw.FeatureCount} features");
    DataSet? scaled = null;
    FeatureScaling? scaledWith = null;
    DataSet Prepare(FeatureScaling scaling)
    {
        if (scaled is null || !SameScaling(scaling, scaledWith!))
        {
            scaled = scaling.Apply(raw ?? DataSources.Load(dataOptions).Train);
            scaledWith = scaling;
            raw = null;
        }
        return scaled;
    }

    var staying = result.GetValue(stay);
    var workerThreads = result.GetValue(threads);
    // A staying worker serves one coordinator after another: when its coordinator leaves, the node is
    // started afresh (a node cannot join a new cluster) and waits for the next one at the same address.
    for (var betweenRuns = false; ; betweenRuns = true)
    {
        var (code, rejoin) = await Serve(betweenRuns);
        if (!rejoin) return code;
    }

    async Task<(int Code, bool Rejoin)> Serve(bool betweenRuns)
    {
        var exitCode = 0;
        var rejoin = false;
        var leaving = 0;
        var joined = new TaskCompletionSource();
        ActorSystem? system = null;
        system = WorkerNode.Start(settings, Prepare, workerThreads,
            onRunFinished: () =>
            {
                if (staying)
                {
                    Console.WriteLine("run finished; staying for the next run");
                    return;
                }
                if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                Console.WriteLine("run finished; leaving");
                Leave(0);
            },
            onCoordinatorLost: () =>
            {
                if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                if (staying)
                {
                    Console.WriteLine($"the coordinator at {target} left; waiting for the next one (--stay)");
                    rejoin = true;
                    Leave(0);
                    return;
                }
                Console.Error.WriteLine($"error: the coordinator at {target} left the cluster");
                Leave(1);
            },
            onRefused: reason =>
            {
                if (Interlocked.Exchange(ref leaving, 1) == 1) return;
                Console.Error.WriteLine($"error: {reason}");
                Leave(2);
            },
            betweenRuns: betweenRuns,
            onJoined: () =>
            {
                Console.WriteLine("joined the cluster");
                joined.TrySetResult();
            });

        void Leave(int code)
        {
            Volatile.Write(ref exitCode, code);
            _ = Akka.Actor.CoordinatedShutdown.Get(system!).Run(Akka.Actor.CoordinatedShutdown.ClrExitReason.Instance);
        }
        var cluster = Akka.Cluster.Cluster.Get(system);
        Console.WriteLine($"worker   {cluster.SelfAddress} joining {settings.SeedAddress}");
        // The first join gives up after --join-timeout; a staying worker waits for the next coordinator as long as it takes.
        var giveUp = betweenRuns ? Task.Delay(Timeout.Infinite) : Task.Delay(timeout);
        if (await Task.WhenAny(joined.Task, system.WhenTerminated, giveUp) != joined.Task && !system.WhenTerminated.IsCompleted)
        {
            Console.Error.WriteLine($"error: could not join the coordinator at {target} within {timeout.TotalSeconds:0.#} s");
            await system.Terminate();
            return (1, false);
        }
        await system.WhenTerminated;
        return (Volatile.Read(ref exitCode), Volatile.Read(ref rejoin));
    }
}
catch (InvalidInputException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static bool SameScaling(FeatureScaling a, FeatureScaling b) =>
    a.Kind == b.Kind && a.Shift.AsSpan().SequenceEqual(b.Shift) && a.Scale.AsSpan().SequenceEqual(b.Scale);
