using Akka.Configuration;
using Backprop.Clustering;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Actors;

/// <summary>
/// Where the workers of a run live. In every case the same coordinator actor runs the same
/// protocol; only the transport differs.
/// </summary>
public static class TrainingHost
{
    /// <summary>The actor-system settings of in-process mode.</summary>
    public static readonly Config LocalConfig = ConfigurationFactory.ParseString("""
        akka {
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = 0
          log-dead-letters-during-shutdown = off
          coordinated-shutdown.run-by-clr-shutdown-hook = off
        }
        """).WithFallback(RuntimeConfig.Common);

    /// <summary>
    /// In-process mode: the coordinator and <paramref name="workers"/> worker actors in one actor
    /// system. With one worker it is the single-process trainer.
    /// </summary>
    public static async Task<TrainingFinished> RunLocalAsync(
        TrainingRun run, int workers, CoordinatorSettings settings, Action<EpochReport>? onEpoch = null,
        Config? config = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var system = ActorSystem.Create(NodeSettings.SystemName, (config ?? Config.Empty).WithFallback(LocalConfig));
        try
        {
            var (coordinator, done) = StartCoordinator(system, run, settings with { MinWorkers = Math.Min(settings.MinWorkers, workers) }, onEpoch);
            var threads = ThreadsPerWorker(run, workers);
            for (var i = 0; i < workers; i++)
            {
                system.ActorOf(GradientWorker.Props(coordinator, _ => run.Train, threads).WithDispatcher(RuntimeConfig.WorkerDispatcher), $"worker-{i + 1}");
            }
            return await WaitAsync(system, done, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Loopback mode: the coordinator node and <paramref name="workers"/> worker nodes, each its own
    /// actor system on 127.0.0.1 in this process, talking over TCP through the real serializers and
    /// tensor channels; with <paramref name="tls"/>, every node presents that certificate and both
    /// ports speak mutual TLS.
    /// </summary>
    public static async Task<TrainingFinished> RunLoopbackAsync(
        TrainingRun run, int workers, CoordinatorSettings settings, Action<EpochReport>? onEpoch = null,
        Config? config = null, TlsFiles? tls = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var frame = NodeSettings.FrameSettingFor(run.Settings.Architecture.ParameterCount);
        var coordinatorNode = new NodeSettings(NodeSettings.CoordinatorRole, "127.0.0.1", Port: 0, MaximumFrameBytes: frame, Tls: tls);
        var system = StartCoordinatorNode(coordinatorNode, config);
        var nodes = new List<ActorSystem>();
        try
        {
            var (_, done) = StartCoordinator(system, run, settings with { MinWorkers = workers, DiscoverClusterWorkers = true, Channel = coordinatorNode.Channel }, onEpoch);
            var address = Akka.Cluster.Cluster.Get(system).SelfAddress;
            var workerNode = new NodeSettings(NodeSettings.WorkerRole, "127.0.0.1", Port: 0, Coordinator: $"{address.Host}:{address.Port}", MaximumFrameBytes: frame, Tls: tls);
            for (var i = 0; i < workers; i++)
            {
                ActorSystem? node = null;
                // Like a worker process: leave the cluster when the run is over.
                node = WorkerNode.Start(workerNode, _ => run.Train, ThreadsPerWorker(run, workers),
                    onRunFinished: () => CoordinatedShutdown.Get(node!).Run(CoordinatedShutdown.ClrExitReason.Instance));
                nodes.Add(node);
            }
            return await WaitAsync(system, done, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Workers leave when the run is over; give them a moment before the coordinator goes.
            NodeSettings.RunIsOver(system);
            await Task.WhenAny(Task.WhenAll(nodes.Select(n => n.WhenTerminated)), Task.Delay(TimeSpan.FromSeconds(10), CancellationToken.None)).ConfigureAwait(false);
            await system.Terminate().ConfigureAwait(false);
            await Task.WhenAll(nodes.Select(n => n.Terminate())).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Cluster mode: this process is the coordinator node (the seed); worker nodes join it from
    /// anywhere. <paramref name="onListening"/> is told the address workers should join.
    /// </summary>
    public static async Task<TrainingFinished> RunClusterAsync(
        TrainingRun run, NodeSettings cluster, CoordinatorSettings settings, Action<EpochReport>? onEpoch = null,
        Action<Address>? onListening = null, CancellationToken cancellationToken = default)
    {
        var frame = cluster.ToConfig().GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? 0;
        var needed = NodeSettings.FrameBytesFor(run.Settings.Architecture.ParameterCount);
        if (needed > frame)
            throw new InvalidInputException($"the model's {run.Settings.Architecture.ParameterCount:N0} parameters need messages of {needed:N0} bytes, more than the maximum frame of {frame:N0} bytes (raise --max-frame-size)");
        var system = StartCoordinatorNode(cluster, null);
        try
        {
            var (_, done) = StartCoordinator(system, run, settings with { DiscoverClusterWorkers = true, Channel = cluster.Channel }, onEpoch);
            onListening?.Invoke(Akka.Cluster.Cluster.Get(system).SelfAddress);
            return await WaitAsync(system, done, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            NodeSettings.RunIsOver(system);
            await system.Terminate().ConfigureAwait(false);
        }
    }

    private static ActorSystem StartCoordinatorNode(NodeSettings cluster, Config? config)
    {
        var system = cluster.CreateSystem((config ?? Config.Empty).WithFallback(cluster.ToConfig()));
        var node = Akka.Cluster.Cluster.Get(system);
        node.Join(node.SelfAddress); // the coordinator is the seed node
        return system;
    }

    /// <summary>--threads, or the processors shared among the workers of this process.</summary>
    private static int ThreadsPerWorker(TrainingRun run, int workers) => run.Settings.Threads ?? Math.Max(1, Environment.ProcessorCount / workers);

    private static (IActorRef Coordinator, TaskCompletionSource<TrainingFinished> Done) StartCoordinator(
        ActorSystem system, TrainingRun run, CoordinatorSettings settings, Action<EpochReport>? onEpoch)
    {
        var done = new TaskCompletionSource<TrainingFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new ProgressListener(done, onEpoch)), "listener");
        var coordinator = system.ActorOf(TrainingCoordinator.Props(run, settings, listener), WorkerNode.CoordinatorActorName);
        listener.Tell(new ProgressListener.ListenTo(coordinator));
        return (coordinator, done);
    }

    /// <summary>The run's outcome; a coordinator system shut down from outside (SIGTERM) ends the wait with an error.</summary>
    private static async Task<TrainingFinished> WaitAsync(ActorSystem system, TaskCompletionSource<TrainingFinished> done, CancellationToken cancellationToken)
    {
        _ = system.WhenTerminated.ContinueWith(
            _ => done.TrySetException(new TrainingFailedException("the coordinator was shut down before training finished")),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        await using (cancellationToken.Register(() => done.TrySetCanceled(cancellationToken)))
        {
            return await done.Task.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Turns the coordinator's reports into callbacks and the outcome into a task. It takes them only
    /// from its coordinator (these messages have no serializer either: the network cannot carry them);
    /// until it is told which actor that is, it keeps what comes.
    /// </summary>
    private sealed class ProgressListener : ReceiveActor, IWithUnboundedStash
    {
        private readonly ILoggingAdapter _log = Context.GetLogger();
        private readonly RefusedMessages _refused;

        /// <summary>Which actor is this listener's coordinator (sent right after the coordinator is created).</summary>
        public sealed record ListenTo(IActorRef Coordinator) : INoSerializationVerificationNeeded;

        public ProgressListener(TaskCompletionSource<TrainingFinished> done, Action<EpochReport>? onEpoch)
        {
            _refused = new RefusedMessages(_log, "listener");
            Receive<ListenTo>(listen =>
            {
                if (!Sender.IsNobody() && !Sender.Path.Address.HasLocalScope) return;
                Become(() => Listening(listen.Coordinator, done, onEpoch));
                Stash.UnstashAll();
            });
            ReceiveAny(_ => Stash.Stash());
        }

        public IStash Stash { get; set; } = null!;

        private void Listening(IActorRef coordinator, TaskCompletionSource<TrainingFinished> done, Action<EpochReport>? onEpoch)
        {
            Receive<EpochCompleted>(e =>
            {
                if (From(coordinator, e)) onEpoch?.Invoke(e.Report);
            });
            Receive<TrainingPaused>(e => From(coordinator, e));
            Receive<TrainingFinished>(f =>
            {
                if (From(coordinator, f)) done.TrySetResult(f);
            });
            Receive<TrainingFailed>(f =>
            {
                if (From(coordinator, f)) done.TrySetException(new TrainingFailedException(f.Reason));
            });
            ReceiveAny(message => _refused.Refuse(message, Sender, "the listener takes only its coordinator's reports"));
        }

        private bool From(IActorRef coordinator, object message)
        {
            if (Equals(Sender, coordinator)) return true;
            _refused.Refuse(message, Sender, $"not from its coordinator {coordinator.Path}");
            return false;
        }

        protected override void PostStop() => _refused.LogSummary("stopped");
    }
}

/// <summary>The coordinator gave up (no workers, a node that cannot be computed, divergence).</summary>
public sealed class TrainingFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingFailedException(string message) : base(message) { }
    /// <summary>Creates the exception.</summary>
    public TrainingFailedException() { }
    /// <summary>Creates the exception.</summary>
    public TrainingFailedException(string message, Exception inner) : base(message, inner) { }
}
