using Backprop.Engine;

namespace Backprop.Shared.Tests.Engine;

[Collection(nameof(AllocationCounting))]
public class WorkerTeamTests
{
    [Fact]
    public void Run_CallerBlocksForASlowHelper_AllocatesNothing()
    {
        var team = new WorkerTeam(2);
        // Start the helper thread without the caller ever blocking: the caller's part waits for the helper's.
        var helperDone = 0;
        team.Run(member =>
        {
            if (member == 1) Volatile.Write(ref helperDone, 1);
            else while (Volatile.Read(ref helperDone) == 0) Thread.SpinWait(100);
        });
        // The helper holds the job long past the caller's spinning, so the caller takes the blocking path
        // (the sleep is the workload here, not a stand-in for synchronisation: Run itself is the join).
        Action<int> slowHelper = static member =>
        {
            if (member == 1) Thread.Sleep(30);
        };

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 3; i++) team.Run(slowHelper);

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Run_EveryMemberRunsOncePerJob_AndFailuresReachTheCaller()
    {
        var team = new WorkerTeam(3);
        var counts = new int[3];
        for (var job = 0; job < 5; job++) team.Run(m => Interlocked.Increment(ref counts[m]));
        Assert.Equal([5, 5, 5], counts);

        var e = Assert.Throws<InvalidOperationException>(() => team.Run(m =>
        {
            if (m == 2) throw new InvalidOperationException("member 2");
        }));
        Assert.Equal("member 2", e.Message);
        team.Run(m => Interlocked.Increment(ref counts[m])); // still usable after a failure
        Assert.Equal([6, 6, 6], counts);
    }
}
