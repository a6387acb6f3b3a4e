using System.Runtime.Serialization;
using Akka.Actor;
using Backprop.Coordinator.Actors;
using Backprop.Protocol;
using Backprop.Training;

namespace Backprop.Coordinator.Tests.Actors;

/// <summary>What the coordinator reports to its listener stays in its process: no serializer of the protocol carries it.</summary>
public sealed class ListenerMessagesTests
{
    private static readonly EpochReport Report = new(2, 5, 0.5, 0.9, 0.6, 0.85, TimeSpan.FromSeconds(1), 1000);

    public static TheoryData<object> ListenerMessages() =>
    [
        new EpochCompleted(Report), new TrainingPaused(9), new TrainingFailed("why"),
        new TrainingFinished(5, FloatTensor.CopyOf([1f, 2f]), Report),
    ];

    [Theory]
    [MemberData(nameof(ListenerMessages))]
    public void ListenerMessage_IsRefusedByTheProtocolsSerializers_AndNeverVerifiedAsWireTraffic(object message)
    {
        using var system = (ExtendedActorSystem)ActorSystem.Create("listener-tests", RuntimeConfig.Common);
        Assert.Throws<ArgumentException>(() => new ProtocolSerializer(system).ToBinary(message));
        Assert.ThrowsAny<Exception>(() => new ControlMessageSerializer(system).ToBinary(message));
        Assert.IsAssignableFrom<INoSerializationVerificationNeeded>(message);
    }
}
