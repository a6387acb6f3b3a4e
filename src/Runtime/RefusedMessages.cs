using Akka.Actor;
using Akka.Event;

namespace Backprop;

/// <summary>
/// What an actor refused, and from whom. The first message of a kind from a sender is logged at
/// WARNING with the sender and the reason; later ones of the same kind from the same sender are only
/// counted, so that a sender repeating itself cannot flood the log. <see cref="LogSummary"/> writes one
/// line with the counts (when the run ends, or the actor stops).
/// </summary>
/// <remarks>
/// Without TLS the sender is what the message claims: Akka.Remote does not check it. So a refusal
/// keeps out messages that name a wrong sender, and the run's random id those that name the right
/// one but not the run; mutual TLS is what makes the sender true.
/// </remarks>
public sealed class RefusedMessages(ILoggingAdapter log, string owner)
{
    /// <summary>Distinct (sender, kind) pairs kept; beyond, refusals are counted under one key.</summary>
    public const int MaximumKeys = 1024;

    private const string OtherSenders = "(other senders)";
    private readonly Dictionary<(string Sender, string Kind), long> _counts = [];

    /// <summary>Every refusal since the last summary.</summary>
    public long Total { get; private set; }

    /// <summary>How many messages of <paramref name="kind"/> from <paramref name="sender"/> were refused since the last summary.</summary>
    public long Count(IActorRef? sender, string kind) => _counts.GetValueOrDefault((Name(sender), kind));

    /// <summary>Refuses <paramref name="message"/> from <paramref name="sender"/>: logged the first time for its sender and kind, counted every time.</summary>
    public void Refuse(object message, IActorRef? sender, string why)
    {
        var kind = message.GetType().Name;
        var key = (Name(sender), kind);
        Total++;
        if (_counts.TryGetValue(key, out var count))
        {
            _counts[key] = count + 1;
            return;
        }
        if (_counts.Count >= MaximumKeys)
        {
            key = (OtherSenders, kind);
            _counts[key] = _counts.GetValueOrDefault(key) + 1;
            return;
        }
        _counts[key] = 1;
        log.Warning("{0}: refusing a {1} from {2}: {3} (refused #{4}; more of this kind from this sender are counted, not logged)",
            owner, kind, key.Item1, why, Total);
    }

    /// <summary>One line with every count since the last summary (nothing if nothing was refused), then starts counting again.</summary>
    public void LogSummary(string when)
    {
        if (Total == 0) return;
        var counts = string.Join("; ", _counts.OrderByDescending(c => c.Value).Select(c => $"{c.Value} {c.Key.Kind} from {c.Key.Sender}"));
        log.Warning("{0}: {1}: refused {2} messages: {3}", owner, when, Total, counts);
        _counts.Clear();
        Total = 0;
    }

    private static string Name(IActorRef? sender) =>
        sender is null || sender.IsNobody() || sender is DeadLetterActorRef ? "no sender" : sender.Path.ToString();
}
