using Backprop.Training;

namespace Backprop.Coordinator.Training;

/// <summary>
/// Reusable gradient sums, lent to one step's gather at a time and handed back with its result, so a
/// step allocates no new sums. A sum handed back stays valid until the pool is lent again.
/// </summary>
internal sealed class GradientSumPool
{
    private readonly Stack<GradientSum> _free = new();

    public GradientSum Take(int parameterCount) => _free.Count > 0 ? _free.Pop() : new GradientSum(parameterCount);

    public void Return(IEnumerable<GradientSum> sums)
    {
        foreach (var sum in sums) _free.Push(sum);
    }
}
