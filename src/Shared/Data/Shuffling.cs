using MathNet.Numerics.Random;

namespace Backprop.Data;

/// <summary>
/// Deterministic permutations: the same (seed, epoch) gives the same order on every node and every
/// run, so any node can compute the epoch's order without being sent it.
/// </summary>
public static class Shuffling
{
    /// <summary>A permutation of 0 … n − 1 for <paramref name="epoch"/> of a run seeded with <paramref name="seed"/>.</summary>
    public static int[] Permutation(int n, int seed, int epoch)
    {
        var order = new int[n];
        for (var i = 0; i < n; i++) order[i] = i;
        Shuffle(order, DeriveSeed(seed, epoch));
        return order;
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public static void Shuffle(Span<int> items, int seed)
    {
        var random = new Xoshiro256StarStar(seed, threadSafe: false);
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Mixes a run seed and a stream number (an epoch, a purpose) into one seed (SplitMix64 finaliser).</summary>
    public static int DeriveSeed(int seed, int stream)
    {
        unchecked
        {
            var z = ((ulong)(uint)seed << 32 | (uint)stream) + 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (int)(z & 0x7FFFFFFF);
        }
    }

    /// <summary>
    /// Splits <paramref name="data"/> into a training and a test part: a seeded shuffle, then the
    /// first (1 − <paramref name="testFraction"/>) for training.
    /// </summary>
    public static DataSplit Split(DataSet data, double testFraction, int seed)
    {
        if (testFraction is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "must be between 0 and 1");
        var order = new int[data.Count];
        for (var i = 0; i < order.Length; i++) order[i] = i;
        Shuffle(order, DeriveSeed(seed, -1));
        var testCount = (int)Math.Round(data.Count * testFraction);
        if (testCount < 1 || testCount >= data.Count)
            throw new InvalidInputException($"{data.Name}: {data.Count} samples cannot be split with a test fraction of {testFraction}");
        var trainCount = data.Count - testCount;
        return new DataSplit(data.Select(order.AsSpan(0, trainCount)), data.Select(order.AsSpan(trainCount), data.Name + " (test)"));
    }
}
