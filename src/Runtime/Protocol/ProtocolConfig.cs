using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Hyperion;

namespace Backprop.Protocol;

/// <summary>The serialization settings every node of a run uses.</summary>
public static class ProtocolConfig
{
    /// <summary>Every type Hyperion may create: the control messages and what they hold.</summary>
    public static IReadOnlyList<Type> ControlTypes { get; } =
    [
        typeof(RegisterWorker), typeof(SetupAccepted), typeof(SetupRefused), typeof(ComputeGradient),
        typeof(VersionMismatch), typeof(RunFinished),
        typeof(StepLayout), typeof(NodeComputed), typeof(StepReduced), typeof(SendState), typeof(NeedState), typeof(HashParts), typeof(PartHashes),
    ];

    /// <summary>
    /// The actor paths a node that is not a member may reach with an actor selection (untrusted mode
    /// drops every other one): the cluster's own (joining, gossip, heartbeats) and the worker actor,
    /// which the coordinator finds with <c>Identify</c>.
    /// </summary>
    public static IReadOnlyList<string> TrustedSelectionPaths { get; } =
        ["/system/cluster/core/daemon", "/system/cluster/heartbeatReceiver", "/user/worker"];

    /// <summary>
    /// The one door: which serializers a message from the network can reach, and what they may create.
    /// <list type="bullet">
    /// <item>Tensor messages go through <see cref="ProtocolSerializer"/>; the small control messages
    /// through Hyperion, which may only create <see cref="ControlTypes"/> (and with unsafe types
    /// disallowed). Weights and gradient messages are bound to the protocol serializer too, which
    /// refuses them: they never travel through Akka.</item>
    /// <item>Akka registers its JSON serializer (Newtonsoft, id 1) under the name <c>json</c> and binds
    /// <c>System.Object</c> to it; a binding cannot be removed in HOCON, and a serializer is reachable
    /// by its id whatever is bound to it. So the name <c>json</c> is given to <see cref="RefusingSerializer"/>
    /// (Newtonsoft is never created, id 1 resolves to nothing) and <c>System.Object</c> is bound to it:
    /// any other type is refused when it is sent and when it arrives.</item>
    /// <item>Akka.Remote's own serializers rebuild an exception carried in a <c>Status.Failure</c>
    /// (akka-misc, id 16) or in a <c>Create</c>, <c>Recreate</c>, <c>Resume</c> or <c>Failed</c> system
    /// message (akka-system-msg, id 22) by calling the serialization constructor of whatever type the
    /// payload names, before checking that it is an exception. Those two names are given to
    /// <see cref="GuardedMiscSerializer"/> and <see cref="GuardedSystemMessageSerializer"/>, which keep
    /// the ids and pass on only what a cluster of this project receives (identification, actor
    /// references, remote-watch heartbeats, <c>Status.Success</c>; watch, unwatch and death
    /// notifications). Remote deployment's serializer (daemon-create, id 3) is replaced by the refusing one.</item>
    /// <item>Untrusted mode: remote deployment (<c>DaemonMsgCreate</c> to /remote) and harmful system
    /// messages from the network are dropped, and actor selections reach only <see cref="TrustedSelectionPaths"/>.</item>
    /// </list>
    /// </summary>
    public static readonly Config Serialization = ConfigurationFactory.ParseString($$"""
        akka.actor {
          serializers {
            json = "{{typeof(RefusingSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            daemon-create = "{{typeof(RefusingSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            akka-misc = "{{typeof(GuardedMiscSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            akka-system-msg = "{{typeof(GuardedSystemMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            backprop-refuse = "{{typeof(RefusingSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            backprop-control = "{{typeof(ControlMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            backprop = "{{typeof(ProtocolSerializer).AssemblyQualifiedNameWithoutVersion()}}"
          }
          serialization-bindings {
            "System.Object" = backprop-refuse
            "{{typeof(ITensorMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop
            "{{typeof(Address).AssemblyQualifiedNameWithoutVersion()}}" = backprop
            "{{typeof(ILocalTensorMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop
            "{{typeof(IControlMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop-control
          }
          serialization-identifiers {
            "{{typeof(RefusingSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{RefusingSerializer.Id}}
            "{{typeof(GuardedMiscSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{GuardedMiscSerializer.Id}}
            "{{typeof(GuardedSystemMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{GuardedSystemMessageSerializer.Id}}
            "{{typeof(ProtocolSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{ProtocolSerializer.Id}}
            "{{typeof(ControlMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{ControlMessageSerializer.Id}}
          }
        }
        akka.remote {
          untrusted-mode = on
          trusted-selection-paths = [{{string.Join(", ", TrustedSelectionPaths.Select(p => $"\"{p}\""))}}]
        }
        """);

    internal static string AssemblyQualifiedNameWithoutVersion(this Type type) => $"{type.FullName}, {type.Assembly.GetName().Name}";
}

/// <summary>
/// Hyperion for the control messages, allowed to create only <see cref="ProtocolConfig.ControlTypes"/>
/// (and never the types Hyperion knows to be unsafe). Hyperion 0.12's own <c>allowed-types</c>
/// setting compares a full assembly-qualified name with a short one when serializing, so it
/// rejects every type; the filter here compares type and assembly names only.
/// </summary>
public sealed class ControlMessageSerializer(ExtendedActorSystem system) : HyperionSerializer(system, FilteredSettings)
{
    /// <summary>The serializer id.</summary>
    public const int Id = 2702;

    private static readonly HyperionSerializerSettings FilteredSettings = new(
        preserveObjectReferences: false,
        versionTolerance: false,
        knownTypesProvider: typeof(NoKnownTypes),
        packageNameOverrides: [],
        surrogates: [],
        disallowUnsafeType: true,
        typeFilter: new AllowList(ProtocolConfig.ControlTypes));

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <summary>No types are known in advance: every manifest names its type.</summary>
    private sealed class NoKnownTypes : IKnownTypesProvider
    {
        public IEnumerable<Type> GetKnownTypes() => [];
    }

    /// <summary>Allows a type when its name and assembly name (without version) are on the list.</summary>
    private sealed class AllowList(IEnumerable<Type> types) : ITypeFilter
    {
        private readonly HashSet<string> _allowed = types.Select(t => t.AssemblyQualifiedNameWithoutVersion()).ToHashSet(StringComparer.Ordinal);

        public bool IsAllowed(string typeName)
        {
            // "Ns.Type, Assembly, Version=…" or Hyperion's short form "Ns.Type, Assembly" / "…, System.Private.CoreLib,%core%".
            var comma = typeName.IndexOf(", ", StringComparison.Ordinal);
            if (comma < 0) return false;
            var assembly = typeName[(comma + 2)..];
            var end = assembly.IndexOf(',', StringComparison.Ordinal);
            if (end >= 0) assembly = assembly[..end];
            return _allowed.Contains($"{typeName[..comma]}, {assembly}");
        }
    }
}

/// <summary>
/// The serializer of every type the protocol does not name (bound to <c>System.Object</c>, and under
/// the name <c>json</c> in place of Akka's Newtonsoft serializer): it writes nothing and creates
/// nothing. Sending such a message fails at the sender with the type's name; a payload naming this
/// serializer's id is dropped by the receiving transport, which logs the <see cref="SerializationException"/>.
/// </summary>
public sealed class RefusingSerializer : Akka.Serialization.Serializer
{
    /// <summary>The serializer id.</summary>
    public const int Id = 2700;

    /// <summary>Created by Akka from configuration.</summary>
    public RefusingSerializer(ExtendedActorSystem system) : base(system) { }

    /// <summary>Created by Akka from configuration, with the settings of the name it replaces (ignored).</summary>
    public RefusingSerializer(ExtendedActorSystem system, Config config) : base(system) { _ = config; }

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override bool IncludeManifest => false;

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj) =>
        throw new ArgumentException($"{obj?.GetType().FullName ?? "null"} is not a message of the protocol: it never crosses the network", nameof(obj));

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, Type type) =>
        throw new SerializationException($"refusing a payload of {bytes?.Length ?? 0} bytes{(type is null ? "" : $" naming {type.FullName}")}: this node deserializes only the protocol's messages");
}

/// <summary>
/// Akka.Remote's akka-misc serializer (id 16), passing on only the manifests a cluster of this project
/// receives. A <c>Status.Failure</c> (manifest STF), remote-deployment scopes, router and config
/// payloads are refused: the first would rebuild an exception of any type the sender names.
/// </summary>
public sealed class GuardedMiscSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>Akka's id for akka-misc, kept so that peers' messages still find it.</summary>
    public const int Id = 16;

    /// <summary>Identify, ActorIdentity, an actor reference, PoisonPill, Kill (both dropped by untrusted mode), remote-watch heartbeats and their answers, Status.Success.</summary>
    private static readonly HashSet<string> Allowed = ["ID", "AID", "AR", "PP", "K", "RWHB", "RWHR", "STS"];

    private readonly Akka.Remote.Serialization.MiscMessageSerializer _inner = new(system);

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj) => _inner.ToBinary(obj);

    /// <inheritdoc/>
    public override string Manifest(object o) => _inner.Manifest(o);

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, string manifest) =>
        Allowed.Contains(manifest) ? _inner.FromBinary(bytes, manifest) : throw new SerializationException($"refusing an akka-misc payload with manifest '{manifest}'");
}

/// <summary>
/// Akka.Remote's system-message serializer (id 22), passing on only remote DeathWatch: Watch, Unwatch
/// and DeathWatchNotification. Create, Recreate, Resume and Failed (which carry an exception of any type
/// the sender names), and Suspend, Terminate and Supervise (remote deployment's) are refused.
/// </summary>
public sealed class GuardedSystemMessageSerializer(ExtendedActorSystem system) : Akka.Serialization.Serializer(system)
{
    /// <summary>Akka's id for akka-system-msg, kept so that peers' messages still find it.</summary>
    public const int Id = 22;

    private static readonly HashSet<Type> Allowed =
        [typeof(Akka.Dispatch.SysMsg.Watch), typeof(Akka.Dispatch.SysMsg.Unwatch), typeof(Akka.Dispatch.SysMsg.DeathWatchNotification)];

    private readonly Akka.Remote.Serialization.SystemMessageSerializer _inner = new(system);

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override bool IncludeManifest => true;

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj) => _inner.ToBinary(obj);

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, Type type) =>
        type is not null && Allowed.Contains(type) ? _inner.FromBinary(bytes, type) : throw new SerializationException($"refusing a system message of type '{type}' from the network");
}
