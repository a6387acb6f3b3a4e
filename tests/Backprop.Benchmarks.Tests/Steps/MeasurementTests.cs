using Backprop.Benchmarks.Steps;
using Backprop.Data;
using Backprop.Networks;

namespace Backprop.Benchmarks.Tests.Steps;

/// <summary>The bookkeeping behind the step command's ratios: every repetition of ours beside one of each other side's.</summary>
public class MeasurementTests
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
    public void Measure_ThreeOtherSides_EachRepetitionPairsAllFourAndTheOrderRotates()
    {
        const int repetitions = 5;
        var calls = new List<string>();
        double Peer(int steps) { calls.Add("peer"); return 1000; }
        double Gemms(int steps) { calls.Add("gemms"); return 4000; }
        double Peak(int steps) { calls.Add("peak"); return 5000; }

        var m = Measurement.Take(Tiny, TinyData(), batch: 8, chunk: 4, threads: 1, repetitions, seconds: 0.001, Peer, Gemms, Peak);

        Assert.Equal(1000, m.MedianOf(Side.PyTorch));
        Assert.Equal(4000, m.MedianOf(Side.Gemms));
        Assert.Equal(5000, m.MedianOf(Side.Peak));
        Assert.True(m.OursMedian > 0);
        var toPeer = m.OursOver(Side.PyTorch);
        var toGemms = m.OursOver(Side.Gemms);
        var toPeak = m.OursOver(Side.Peak);
        Assert.Equal(repetitions, toPeer.Length);
        // Each repetition's ours over each other side's: the same ours in every ratio.
        for (var r = 0; r < repetitions; r++)
        {
            Assert.Equal(toPeer[r] * 1000, toGemms[r] * 4000, 1e-9 * toPeer[r] * 1000);
            Assert.Equal(toPeer[r] * 1000, toPeak[r] * 5000, 1e-9 * toPeer[r] * 1000);
            Assert.Equal(m.Ours[r], toPeak[r] * 5000, 1e-9 * m.Ours[r]);
        }
        Assert.All(m.Over(Side.PyTorch, Side.Gemms), x => Assert.Equal(0.25, x));
        Assert.All(m.Over(Side.Gemms, Side.Peak), x => Assert.Equal(0.8, x));
        // Probe, sizing and warm-up calls first (three per side), then one call per side per repetition,
        // the order rotating: (ours, peer, gemms, peak), (peer, gemms, peak, ours), (gemms, peak, ours, peer), …
        var timed = calls.Skip(9).ToArray();
        Assert.Equal(3 * repetitions, timed.Length);
        Assert.Equal(["peer", "gemms", "peak", "peer", "gemms", "peak", "gemms", "peak", "peer", "peak", "peer", "gemms", "peer", "gemms", "peak"], timed);
    }

    [Fact]
    public void Measure_SideNotTimed_KeepsTheOthersInTheirPlaces()
    {
        var calls = new List<string>();
        double Peak(int steps) { calls.Add("peak"); return 5000; }

        var m = Measurement.Take(Tiny, TinyData(), batch: 8, chunk: 4, threads: 1, repetitions: 3, seconds: 0.001, null, null, Peak);

        Assert.True(double.IsNaN(m.MedianOf(Side.PyTorch)));
        Assert.True(double.IsNaN(m.MedianOf(Side.Gemms)));
        Assert.Empty(m.OursOver(Side.PyTorch));
        Assert.Equal(5000, m.MedianOf(Side.Peak));
        Assert.Equal(3, m.OursOver(Side.Peak).Length);
        Assert.Equal(3 + 3, calls.Count);
    }

    [Fact]
    public void Measure_PeerThatFailed_GivesNoPeerRatiosButKeepsTheGemmsOnes()
    {
        var m = Measurement.Take(Tiny, TinyData(), batch: 8, chunk: 4, threads: 1, repetitions: 3, seconds: 0.001, _ => double.NaN, _ => 4000);

        Assert.True(double.IsNaN(m.MedianOf(Side.PyTorch)));
        Assert.Empty(m.OursOver(Side.PyTorch));
        Assert.Empty(m.Over(Side.PyTorch, Side.Gemms));
        Assert.Equal(3, m.OursOver(Side.Gemms).Length);
    }

    [Fact]
    public void Medians_EvenCount_AreTheMeanOfTheMiddleTwoAndLeaveTheRepetitionsInOrder()
    {
        var m = new Measurement([4, 1, 3, 2], [null, [40, 10, 30, 20], [8, 2, 6, 4]]);

        Assert.Equal(2.5, m.OursMedian);
        Assert.Equal(25, m.MedianOf(Side.Gemms));
        Assert.Equal([4, 1, 3, 2], m.Ours);
        Assert.Equal([0.5, 0.5, 0.5, 0.5], m.OursOver(Side.Peak));
        Assert.Equal([5, 5, 5, 5], m.Over(Side.Gemms, Side.Peak));
    }
}
