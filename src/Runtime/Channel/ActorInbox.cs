using Akka.Actor;

namespace Backprop.Channel;

/// <summary>A frame the node's tensor channel received, as a message to the actor that owns the channel (never on the wire).</summary>
/// <param name="Peer">The endpoint the sender named in its Hello.</param>
/// <param name="Header">The frame's header.</param>
/// <param name="Payload">Exactly <see cref="FrameHeader.Count"/> values from the channel's pool; the receiver gives it back.</param>
public sealed record TensorArrived(string Peer, FrameHeader Header, float[] Payload) : INoSerializationVerificationNeeded;

/// <summary>The channel's connection to or from <paramref name="Peer"/> dropped, failed or carried a bad frame (never on the wire).</summary>
public sealed record TensorLinkFailed(string Peer, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Turns what the channel reports into messages to <paramref name="owner"/>.</summary>
public sealed class ActorInbox(IActorRef owner) : ITensorInbox
{
    /// <inheritdoc/>
    public void Received(string peer, FrameHeader header, float[] payload) => owner.Tell(new TensorArrived(peer, header, payload));

    /// <inheritdoc/>
    public void Failed(string peer, string reason) => owner.Tell(new TensorLinkFailed(peer, reason));
}
