using Akka.Event;
using Backprop.Protocol;

namespace Backprop.Coordinator.Tests.Security;

/// <summary>What is refused is logged once per sender and kind, counted, and summed up in one line.</summary>
public sealed class RefusedMessagesSpecs : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public void Refusals_AreLoggedOncePerSenderAndKind_CountedAlways_AndSummedUp()
    {
        var refused = new RefusedMessages(Logging.GetLogger(Sys, "refusals"), "spec");
        var other = CreateTestProbe("other");
        EventFilter.Warning(contains: "refusing a RunFinished from").ExpectOne(() =>
        {
            for (var i = 0; i < 3; i++) refused.Refuse(new RunFinished("r"), TestActor, "not its coordinator");
        });
        EventFilter.Warning(contains: $"refusing a RunFinished from {other.Ref.Path}").ExpectOne(() => refused.Refuse(new RunFinished("r"), other.Ref, "why"));
        EventFilter.Warning(contains: "refusing a SetupAccepted from").ExpectOne(() => refused.Refuse(new SetupAccepted("r"), TestActor, "why"));
        Assert.Equal(3, refused.Count(TestActor, nameof(RunFinished)));
        Assert.Equal(5, refused.Total);

        EventFilter.Warning(contains: $"run over: refused 5 messages: 3 RunFinished from {TestActor.Path}").ExpectOne(() => refused.LogSummary("run over"));
        Assert.Equal(0, refused.Total);
        EventFilter.Warning().Expect(0, () => refused.LogSummary("nothing since")); // nothing refused: no line
    }
}
