using System.CommandLine;
using Backprop.CommandLine;
using Backprop.Data;
using Backprop.Engine;
using Backprop.Models;

namespace Backprop.Coordinator.Cli;

/// <summary><c>backprop eval</c>: loads a model and reports its loss and accuracy on data.</summary>
internal sealed class EvalCommand
{
    private readonly DataOptionSet _data = new();
    private readonly Option<string> _model = new("--model", "-m") { Description = "The model file", Required = true, HelpName = "PATH" };
    private readonly Option<string> _on = new Option<string>("--on")
    {
        Description = "Which part of the data to evaluate on: test, train or all",
        DefaultValueFactory = _ => "test",
    }.AcceptOnlyFromAmong("test", "train", "all");

    public Command Build()
    {
        var command = new Command("eval", "Report a saved model's loss and accuracy on a data set");
        command.Options.Add(_model);
        command.Options.Add(_on);
        foreach (var option in _data.All) command.Options.Add(option);
        command.SetAction((result, _) => Task.FromResult(Run(result, result.InvocationConfiguration.Output)));
        return command;
    }

    private int Run(ParseResult result, TextWriter output)
    {
        var path = result.GetValue(_model)!;
        var model = ModelFile.Load(path);
        var split = DataSources.Load(_data.Read(result));
        var part = result.GetValue(_on);
        var data = part switch
        {
            "train" => split.Train,
            "test" => split.Test,
            _ => split.Train.Select(Enumerable.Range(0, split.Train.Count).ToArray()),
        };
        var architecture = model.Architecture;
        if (data.FeatureCount != architecture.InputSize)
            throw new InvalidInputException($"{path}: the model takes {architecture.InputSize} inputs but {data.Name} has {data.FeatureCount} features per sample");
        var classes = architecture.OutputSize == 1 ? 2 : architecture.OutputSize;
        data = model.Scaling.Apply(data.WithClassCount(classes));
        if (part == "all")
        {
            var test = model.Scaling.Apply(split.Test.WithClassCount(classes));
            var (trainLoss, trainCorrect) = Evaluate(model, data);
            var (testLoss, testCorrect) = Evaluate(model, test);
            var count = data.Count + test.Count;
            Report(output, "all", count, (trainLoss + testLoss) / count, (double)(trainCorrect + testCorrect) / count);
            return 0;
        }
        var (loss, correct) = Evaluate(model, data);
        Report(output, part!, data.Count, loss / data.Count, (double)correct / data.Count);
        return 0;
    }

    private static (double Loss, int Correct) Evaluate(Model model, DataSet data) =>
        new BatchEngine(model.Architecture, 256).Evaluate(model.Parameters, data);

    private static void Report(TextWriter output, string part, int count, double loss, double accuracy) =>
        output.WriteLine($"{part}: {count} samples  loss {loss:F4}  accuracy {accuracy:F4}");
}
