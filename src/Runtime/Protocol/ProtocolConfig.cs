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
        typeof(VersionMismatch), typeof(RunFinished), typeof(PauseTraining), typeof(ResumeTraining),
        typeof(StepLayout), typeof(NodeComputed), typeof(StepReduced), typeof(SendState), typeof(NeedState), typeof(HashParts), typeof(PartHashes),
    ];

    /// <summary>
    /// Tensor messages go through <see cref="ProtocolSerializer"/>; the small control messages
    /// through Hyperion, which may only create the protocol's own types (and with unsafe types
    /// disallowed). Weights and gradient messages are bound to the protocol serializer too, which
    /// refuses them: they never travel through Akka. Nothing of ours reaches the JSON default.
    /// </summary>
    public static readonly Config Serialization = ConfigurationFactory.ParseString($$"""
        akka.actor {
          serializers {
            backprop-control = "{{typeof(ControlMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}"
            backprop = "{{typeof(ProtocolSerializer).AssemblyQualifiedNameWithoutVersion()}}"
          }
          serialization-bindings {
            "{{typeof(ITensorMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop
            "{{typeof(ILocalTensorMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop
            "{{typeof(IControlMessage).AssemblyQualifiedNameWithoutVersion()}}" = backprop-control
          }
          serialization-identifiers {
            "{{typeof(ProtocolSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{ProtocolSerializer.Id}}
            "{{typeof(ControlMessageSerializer).AssemblyQualifiedNameWithoutVersion()}}" = {{ControlMessageSerializer.Id}}
          }
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
