using System.Runtime.ExceptionServices;

namespace Backprop.Engine;

/// <summary>
/// A fixed team of threads that run one job together: the calling thread is member 0, the others are
/// persistent background threads. Members meet at <see cref="Barrier"/> between the phases of a job.
/// Running a job allocates nothing.
/// </summary>
/// <remarks>
/// A helper thread that has had no job for <see cref="IdleTimeout"/> ends itself and is started again by
/// the next job, so an engine that is dropped without being disposed leaves no threads behind for long.
/// Not re-entrant: one job at a time.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim waits on a monitor and holds no OS handle unless its AvailableWaitHandle is asked for; helpers end on their own")]
internal sealed class WorkerTeam
{
    /// <summary>How long a helper thread waits for the next job before it ends.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(2);

    private const int Exited = 0, Idle = 1, Claimed = 2;

    private readonly SemaphoreSlim[] _start;   // one per helper, so no helper can take another's job
    private readonly int[] _state;             // Exited, Idle or Claimed per helper
    // Released once per job by the last member out. Not a ManualResetEventSlim: that one allocates its lock
    // object the first time a Wait actually blocks, which may be in the middle of training.
    private readonly SemaphoreSlim _done = new(0);
    private Action<int>? _job;
    private int _running;                      // members still in the job
    private Exception? _failure;
    private volatile bool _failed;
    private readonly long[] _allocated;        // each member's allocated-bytes counter at the end of its last job
    private int _arrived;                      // members at the current barrier
    private volatile int _generation;          // barriers passed in this job

    /// <summary>A team of <paramref name="size"/> members (the caller and size − 1 helpers).</summary>
    public WorkerTeam(int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        Size = size;
        _start = new SemaphoreSlim[size];
        _state = new int[size];
        _allocated = new long[size];
        for (var m = 1; m < size; m++) _start[m] = new SemaphoreSlim(0);
    }

    /// <summary>Members, the caller included.</summary>
    public int Size { get; }

    /// <summary>Bytes the helper threads have allocated, as of the end of their last jobs (for the allocation tests).</summary>
    public long HelperAllocatedBytes
    {
        get
        {
            long total = 0;
            for (var m = 1; m < Size; m++) total += Volatile.Read(ref _allocated[m]);
            return total;
        }
    }

    /// <summary>Runs <paramref name="job"/>(member) on every member and returns when all are done; rethrows the first failure.</summary>
    public void Run(Action<int> job)
    {
        _job = job;
        _failure = null;
        _failed = false;
        _arrived = 0;
        _generation = 0;
        _running = Size;
        for (var m = 1; m < Size; m++)
        {
            // Claim an idle helper so it cannot time out now; start a new one if it had ended.
            if (Interlocked.CompareExchange(ref _state[m], Claimed, Idle) != Idle)
            {
                _state[m] = Claimed;
                var member = m;
                new Thread(() => Help(member)) { IsBackground = true, Name = $"BatchEngine worker {m}" }.Start();
            }
            _start[m].Release();
        }
        Execute(0);
        _done.Wait();
        _job = null; // hold no reference to the job's owner between jobs
        if (_failure is not null) ExceptionDispatchInfo.Throw(_failure);
    }

    /// <summary>Waits until every member has arrived (call from inside a job, the same number of times on every member).</summary>
    public void Barrier()
    {
        if (Size == 1) return;
        var generation = _generation;
        if (Interlocked.Increment(ref _arrived) == Size)
        {
            _arrived = 0;
            _generation = generation + 1;
            return;
        }
        var spin = new SpinWait();
        while (_generation == generation)
        {
            if (_failed) throw new OperationCanceledException("another member of the team failed");
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private void Execute(int member)
    {
        try
        {
            _job!(member);
        }
#pragma warning disable CA1031 // the failure is rethrown on the calling thread
        catch (Exception e)
#pragma warning restore CA1031
        {
            Interlocked.CompareExchange(ref _failure, e, null);
            _failed = true;
        }
        finally
        {
            Volatile.Write(ref _allocated[member], GC.GetAllocatedBytesForCurrentThread());
            // A helper is idle again before the caller can see the job done and claim it for the next one.
            if (member != 0) Volatile.Write(ref _state[member], Idle);
            if (Interlocked.Decrement(ref _running) == 0) _done.Release();
        }
    }

    private void Help(int member)
    {
        while (true)
        {
            if (!_start[member].Wait(IdleTimeout))
            {
                // Nobody claimed this helper meanwhile: end. (A claim comes with a Release, so wait for it.)
                if (Interlocked.CompareExchange(ref _state[member], Exited, Idle) == Idle) return;
                _start[member].Wait();
            }
            Execute(member);
        }
    }
}
