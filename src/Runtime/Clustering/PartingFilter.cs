using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;

namespace Backprop.Clustering;

/// <summary>
/// Keeps a node's log quiet about the remote transport while no run is going on. When nodes leave at
/// the end of a run, the transport often sees a peer's connection close before the peer's goodbye
/// arrives, and reports it as a WARNING ("Association … has failed"), an ERROR ("Disassociated"),
/// each with a stack trace, or a channel that "may not shut down cleanly", though nothing went
/// wrong; a worker that stays for the next run reports every few seconds that the coordinator it
/// waits for is not there yet. After <see cref="RunIsOver"/> such reports are dropped; until then,
/// and again after <see cref="RunHasStarted"/>, they are kept: during a run they mean a lost worker
/// or coordinator.
/// </summary>
internal sealed class PartingFilter : LogFilterBase
{
    private static readonly ConditionalWeakTable<ActorSystem, PartingFilter> Filters = [];
    private volatile bool _over;

    public override LogFilterType FilterType => LogFilterType.Source;

    /// <summary>From now on, a peer's disassociation is expected and not logged.</summary>
    public void RunIsOver() => _over = true;

    /// <summary>From now on, the transport's reports are logged again.</summary>
    public void RunHasStarted() => _over = false;

    public override LogFilterDecision ShouldKeepMessage(LogEvent content, string? expandedMessage = null) =>
        _over && content is Warning or Error && IsTransport(content.LogSource) ? LogFilterDecision.Drop : LogFilterDecision.Keep;

    /// <summary>Whether a log source is the remote transport (remoting, its endpoints, the TCP channels under them) or the retries of a join.</summary>
    internal static bool IsTransport(string source) =>
        source.StartsWith("remoting ", StringComparison.Ordinal)
        || source.Contains("/system/endpointManager", StringComparison.Ordinal)
        || source.Contains("/system/cluster/core/daemon/joinSeedNodeProcess", StringComparison.Ordinal)
        || source.StartsWith("TcpServerHandler", StringComparison.Ordinal)
        || source.StartsWith("TcpClientHandler", StringComparison.Ordinal);

    /// <summary>The setup that puts a new filter on a system; <see cref="Attach"/> it once the system exists.</summary>
    public LogFilterSetup Setup() => new([this]);

    /// <summary>Makes this filter the one <see cref="For"/> finds for <paramref name="system"/>.</summary>
    public void Attach(ActorSystem system) => Filters.AddOrUpdate(system, this);

    /// <summary>The filter of a system made by <see cref="NodeSettings.CreateSystem"/>, or null.</summary>
    public static PartingFilter? For(ActorSystem system) => Filters.TryGetValue(system, out var filter) ? filter : null;
}
