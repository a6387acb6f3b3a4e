using Backprop.Coordinator.Cli;
using Backprop.Data;
using Backprop.Networks;

namespace Backprop.Coordinator.Tests.Cli;

/// <summary>The bookkeeping behind the bench's ratios: every repetition of ours beside one of each other side's.</summary>
public class BenchCommandTests
{
    private static readonly Architecture Tiny = new([4, 5, 3], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy);

    private static DataSet TinyData()
    {
        var random = new Random(7);
        var features = Enumerable.Range(0, 64 * 4).Select(_ => (float)random.NextDouble()).ToArray();
        var labels = Enumerable.Range(0, 64).Select(i => i % 3).ToArray();
        return new DataSet("tiny", features, 4, labels, 3, new SampleOrigin("tiny", "sample", 0));
    }

    [Fact]
    public void Measure_TwoOtherSides_EachRepetitionPairsAllThreeAndTheOrderRotates()
    {
        const int repetitions = 5;
        var calls = new List<string>();
        double Peer(int steps) { calls.Add("peer"); return 1000; }
        double Gemms(int steps) { calls.Add("gemms"); return 4000; }

        var (ours, theirs, ratios, gemms, oursToGemms, theirsToGemms) =
            BenchCommand.Measure(Tiny, TinyData(), batch: 8, chunk: 4, threads: 1, repetitions, seconds: 0.001, Peer, Gemms);

        Assert.Equal(1000, theirs);
        Assert.Equal(4000, gemms);
        Assert.True(ours > 0);
        Assert.Equal(repetitions, ratios.Length);
        Assert.Equal(repetitions, oursToGemms.Length);
        // Each repetition's ours over each other side's: the same ours in both ratios.
        for (var r = 0; r < repetitions; r++) Assert.Equal(ratios[r] * 1000, oursToGemms[r] * 4000, 1e-9 * ratios[r] * 1000);
        Assert.All(theirsToGemms, x => Assert.Equal(0.25, x));
        // Probe, sizing and warm-up calls first (three per side), then one call per side per repetition,
        // the order rotating: (ours, peer, gemms), (peer, gemms, ours), (gemms, ours, peer), …
        var timed = calls.Skip(6).ToArray();
        Assert.Equal(2 * repetitions, timed.Length);
        Assert.Equal(["peer", "gemms", "peer", "gemms", "gemms", "peer", "peer", "gemms", "peer", "gemms"], timed);
    }

    [Fact]
    public void Measure_PeerThatFailed_GivesNoPeerRatiosButKeepsTheGemmsOnes()
    {
        var (_, theirs, ratios, _, oursToGemms, theirsToGemms) =
            BenchCommand.Measure(Tiny, TinyData(), batch: 8, chunk: 4, threads: 1, repetitions: 3, seconds: 0.001, _ => double.NaN, _ => 4000);

        Assert.True(double.IsNaN(theirs));
        Assert.Empty(ratios);
        Assert.Empty(theirsToGemms);
        Assert.Equal(3, oursToGemms.Length);
    }
}
