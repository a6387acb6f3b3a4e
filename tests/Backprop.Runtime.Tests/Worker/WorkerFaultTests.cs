using Backprop.Training;
using Backprop.Worker;

namespace Backprop.Runtime.Tests.Worker;

public sealed class WorkerFaultTests
{
    [Theory]
    [InlineData("kill-after-parts:20", "kill-after-parts", 20)]
    [InlineData("kill-after-sums:0", "kill-after-sums", 0)]
    [InlineData("perturb:10", "perturb", 10)]
    [InlineData("wrong-gradients:5", "wrong-gradients", 5)]
    [InlineData("hang-compute:2", "hang-compute", 2)]
    [InlineData("hang-after-parts:7", "hang-after-parts", 7)]
    public void Parse_KnownPhases(string text, string phase, long step) => Assert.Equal(new WorkerFault(phase, step), WorkerFault.Parse(text));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Parse_Nothing_IsNoFault(string? text) => Assert.Null(WorkerFault.Parse(text));

    [Theory]
    [InlineData("wrong-gradients")]
    [InlineData("explode:3")]
    [InlineData("hang-compute:-1")]
    [InlineData("perturb:x")]
    public void Parse_Anything_Else_NamesTheVariableAndThePhases(string text)
    {
        var e = Assert.Throws<InvalidInputException>(() => WorkerFault.Parse(text));
        Assert.Contains($"BACKPROP_FAULT='{text}'", e.Message);
        Assert.Contains("wrong-gradients", e.Message);
    }

    [Fact]
    public void WrongGradients_ScalesTheSumFromItsStepOn_AndNotBefore()
    {
        var fault = new WorkerFault(WorkerFault.WrongGradients, 5);
        var sum = new GradientSum([1f, -2f, 0.5f], 3, 1.5, 2);
        fault.AfterCompute(4, sum);
        Assert.Equal([1f, -2f, 0.5f], sum.Values);
        fault.AfterCompute(5, sum);
        Assert.Equal([-20f, 40f, -10f], sum.Values);
        Assert.Equal((3, 1.5, 2), (sum.SampleCount, sum.LossSum, sum.CorrectCount)); // finite garbage: only the gradient changes
    }
}
