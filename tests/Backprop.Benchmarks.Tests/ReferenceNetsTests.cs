using Backprop.Networks;

namespace Backprop.Benchmarks.Tests;

/// <summary>bench/nets.tsv, the one table of reference nets, as the C# benchmarks read it.</summary>
public class ReferenceNetsTests
{
    private const string Header = "name\tsizes\thidden\toutput\tcost\n";

    [Fact]
    public void All_TheShippedFile_HoldsTheThreeReferenceNets()
    {
        Assert.Equal(["784-30-10", "784-256-128-10", "784-1024-1024-10"], ReferenceNets.All.Select(n => n.Name));
        Assert.Equal(new Architecture([784, 30, 10], Activation.Logistic, Activation.Logistic, Cost.Quadratic), ReferenceNets.Find("784-30-10").Architecture);
        Assert.Equal(new Architecture([784, 1024, 1024, 10], Activation.ReLU, Activation.Softmax, Cost.CrossEntropy), ReferenceNets.Find("784-1024-1024-10").Architecture);
    }

    [Fact]
    public void All_EveryName_IsItsLayerSizes()
    {
        foreach (var net in ReferenceNets.All) Assert.Equal(net.Name, string.Join('-', net.Architecture.Sizes));
    }

    [Fact]
    public void Parse_BlankLinesAndCrLf_AreRead()
    {
        var nets = ReferenceNets.Parse(Header.Replace("\n", "\r\n") + "a\t4,3,2\ttanh\tsoftmax\tcross-entropy\r\n\r\n", "t.tsv");

        var net = Assert.Single(nets);
        Assert.Equal("a", net.Name);
        Assert.Equal(new Architecture([4, 3, 2], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy), net.Architecture);
    }

    [Theory]
    [InlineData("name\tsizes\tcost\n784-10\t784,10\tquadratic\n", "t.tsv:1: expected the header line")]
    [InlineData(Header + "a\t784,10\trelu\tsoftmax\n", "t.tsv:2: expected 5 tab-separated fields, found 4")]
    [InlineData(Header + "a\t784,x\trelu\tsoftmax\tcross-entropy\n", "t.tsv:2: sizes '784,x'")]
    [InlineData(Header + "a\t784,10\tswish\tsoftmax\tcross-entropy\n", "t.tsv:2: unknown hidden activation 'swish'")]
    [InlineData(Header + "a\t784,10\trelu\tsoftmax\thinge\n", "t.tsv:2: unknown cost 'hinge'")]
    [InlineData(Header + "a\t784,10\trelu\tidentity\tcross-entropy\n", "t.tsv:2: cross-entropy cost needs a softmax or logistic output")]
    [InlineData(Header + "a\t784,10\trelu\tsoftmax\tcross-entropy\na\t784,10\trelu\tsoftmax\tcross-entropy\n", "t.tsv:3: a is named twice")]
    [InlineData(Header, "t.tsv: no nets after the header line")]
    public void Parse_BadFile_SaysWhereAndWhat(string text, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => ReferenceNets.Parse(text, "t.tsv"));

        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void Select_AllOrNames_InTheOrderGiven()
    {
        Assert.Equal(ReferenceNets.All, ReferenceNets.Select(" All ", "--nets"));
        Assert.Equal(["784-1024-1024-10", "784-30-10"], ReferenceNets.Select("784-1024-1024-10, 784-30-10", "--nets").Select(n => n.Name));
    }

    [Theory]
    [InlineData("nope", "--nets nope: expected one of 784-30-10, 784-256-128-10, 784-1024-1024-10 or all")]
    [InlineData(" , ", "--nets ' , ': expected net names separated by commas, or all")]
    public void Select_UnknownName_NamesTheOptionAndTheNets(string text, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => ReferenceNets.Select(text, "--nets"));

        Assert.Equal(expected, e.Message);
    }

    [Theory]
    [InlineData("784-30-10", 95_880)]           // 4·784·30 + 6·30·10
    [InlineData("784-256-128-10", 1_007_104)]   // 4·784·256 + 6·256·128 + 6·128·10
    [InlineData("784-1024-1024-10", 9_564_160)] // 4·784·1024 + 6·1024·1024 + 6·1024·10
    public void PerSample_ForwardAndWeightGradientEverywhereBackwardErrorBelowAllButTheFirst(string net, double flops)
    {
        Assert.Equal(flops, StepFlops.PerSample(ReferenceNets.Find(net).Architecture));
    }

    [Fact]
    public void Flops_OfTheTrainingStepBenchmark_AreThePerSampleCountTimesTheBatch()
    {
        var benchmark = new TrainingStepBenchmarks { Net = "784-256-128-10" };

        Assert.Equal(256 * 1_007_104.0, benchmark.Flops);
        Assert.Equal(ReferenceNets.All.Select(n => n.Name), TrainingStepBenchmarks.Nets);
    }
}
