using Akka.Actor;
using Akka.Configuration;
using Backprop.Coordinator.Training;
using Backprop.Protocol;
using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Coordinator.Actors;

/// <summary>
/// Local mode: one actor system holding the coordinator and N worker actors. With one worker it
/// is the single-process trainer; the path is the same for any N.
/// </summary>
public static class LocalTraining
{
    /// <summary>The actor-system settings of local mode.</summary>
    public static readonly Config DefaultConfig = ConfigurationFactory.ParseString("""
        akka {
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = 0
          log-dead-letters-during-shutdown = off
          coordinated-shutdown.run-by-clr-shutdown-hook = off
        }
        # Each worker computes on a thread of its own, so long gradient work never starves the
        # coordinator or the scheduler.
        backprop.worker-dispatcher {
          type = PinnedDispatcher
        }
        """).WithFallback(ProtocolConfig.Serialization);

    /// <summary>
    /// Trains <paramref name="run"/> with <paramref name="workers"/> local worker actors and returns
    /// the final weights; throws <see cref="TrainingFailedException"/> when the coordinator gives up.
    /// </summary>
    public static async Task<TrainingFinished> RunAsync(
        TrainingRun run, int workers, CoordinatorSettings settings, Action<EpochReport>? onEpoch = null,
        Config? config = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var system = ActorSystem.Create("backprop", (config ?? Config.Empty).WithFallback(DefaultConfig));
        try
        {
            var done = new TaskCompletionSource<TrainingFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
            var listener = system.ActorOf(Props.Create(() => new ProgressListener(done, onEpoch)), "listener");
            var coordinator = system.ActorOf(TrainingCoordinator.Props(run, settings with { MinWorkers = Math.Min(settings.MinWorkers, workers) }, listener), "coordinator");
            var threads = Math.Max(1, Environment.ProcessorCount / workers);
            for (var i = 0; i < workers; i++)
            {
                system.ActorOf(GradientWorker.Props(coordinator, _ => run.Train, threads).WithDispatcher("backprop.worker-dispatcher"), $"worker-{i + 1}");
            }
            await using (cancellationToken.Register(() => done.TrySetCanceled(cancellationToken)))
            {
                return await done.Task.ConfigureAwait(false);
            }
        }
        finally
        {
            await system.Terminate().ConfigureAwait(false);
        }
    }

    /// <summary>Turns the coordinator's reports into callbacks and the outcome into a task.</summary>
    private sealed class ProgressListener : ReceiveActor
    {
        public ProgressListener(TaskCompletionSource<TrainingFinished> done, Action<EpochReport>? onEpoch)
        {
            Receive<EpochCompleted>(e => onEpoch?.Invoke(e.Report));
            Receive<TrainingPaused>(_ => { });
            Receive<TrainingFinished>(f => done.TrySetResult(f));
            Receive<TrainingFailed>(f => done.TrySetException(new TrainingFailedException(f.Reason)));
        }
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
