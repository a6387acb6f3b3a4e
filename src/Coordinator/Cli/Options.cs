using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.Coordinator.Cli;

/// <summary>Parsers for option values, each naming the option and the bad value in its error.</summary>
internal static class Parse
{
    public static Option<T> WithParser<T>(this Option<T> option, Func<string, (T? Value, string? Error)> parse)
    {
        option.CustomParser = result =>
        {
            if (result.Tokens.Count == 0) return option.DefaultValueFactory is { } factory ? factory(result) : default!;
            var text = result.Tokens[^1].Value;
            var (value, error) = parse(text);
            if (error is null) return value!;
            result.AddError($"{option.Name} '{text}': {error}");
            return default!;
        };
        return option;
    }

    public static (int[]? Value, string? Error) Sizes(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var sizes = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out sizes[i]) || sizes[i] < 1)
                return (null, $"'{parts[i]}' is not a positive layer size (expected sizes separated by commas, like 128,64)");
        }
        return (sizes, null);
    }

    public static (int Value, string? Error) PositiveInt(string text) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? (n, null)
            : (0, "expected a whole number of at least 1");

    public static (double Value, string? Error) PositiveSeconds(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 && double.IsFinite(s)
            ? (s, null)
            : (0, "expected a positive number of seconds");

    public static (Activation Value, string? Error) Activation(string text) =>
        Activations.TryParse(text, out var f) ? (f, null) : (default, "expected logistic, tanh, relu, softmax or identity");

    public static (Cost Value, string? Error) Cost(string text) =>
        Costs.TryParse(text, out var c) ? (c, null) : (default, "expected quadratic or cross-entropy");

    public static (OptimizerKind Value, string? Error) Optimizer(string text) =>
        OptimizerSettings.TryParse(text, out var k) ? (k, null) : (default, "expected sgd, momentum or adam");

    public static (ScalingKind Value, string? Error) Scaling(string text) =>
        FeatureScaling.TryParse(text, out var k) ? (k, null) : (default, "expected none, max, minmax or standard");

    public static (bool? Value, string? Error) Header(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => (null, null),
        "yes" or "true" => (true, null),
        "no" or "false" => (false, null),
        _ => (null, "expected auto, yes or no"),
    };
}

/// <summary>The options that choose data, shared by every command that reads data.</summary>
internal sealed class DataOptionSet
{
    public Option<string> Data { get; } = new("--data")
    {
        Description = "Training data: digits (embedded), fashion-mnist, xor, spirals, a CSV file (.csv[.gz]), an IDX images file, or a directory of IDX files",
        DefaultValueFactory = _ => "digits",
        HelpName = "NAME|PATH",
    };
    public Option<string?> TestData { get; } = new("--test-data")
    {
        Description = "Separate test data (file or directory); otherwise the data's own test part, or a split",
        HelpName = "PATH",
    };
    public Option<double> TestFraction { get; } = new Option<double>("--test-fraction")
    {
        Description = "Part of the data held out for testing when it has no test part",
        DefaultValueFactory = _ => 0.2,
    }.WithParser(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && f is > 0 and < 1 ? (f, null) : (0, "expected a number between 0 and 1"));
    public Option<int> LabelColumn { get; } = new("--label-column")
    {
        Description = "CSV column of the label, 0-based; negative counts from the end",
        DefaultValueFactory = _ => -1,
    };
    public Option<bool?> Header { get; } = new Option<bool?>("--header")
    {
        Description = "Whether a CSV file starts with a header line: auto, yes, no",
        DefaultValueFactory = _ => null,
        HelpName = "auto|yes|no",
    }.WithParser(Parse.Header);
    public Option<int> SplitSeed { get; } = new("--split-seed")
    {
        Description = "Seed of the train/test split",
        DefaultValueFactory = _ => 0,
    };
    public Option<int?> Classes { get; } = new Option<int?>("--classes")
    {
        Description = "Number of classes (default: largest training label + 1); a label outside is an error",
    }.WithParser(t => { var (n, e) = Parse.PositiveInt(t); return (n, e); });

    public IEnumerable<Option> All => [Data, TestData, TestFraction, LabelColumn, Header, SplitSeed, Classes];

    public DataOptions Read(ParseResult result) => new(
        result.GetValue(Data)!,
        result.GetValue(TestData),
        result.GetValue(TestFraction),
        new CsvOptions(result.GetValue(LabelColumn), result.GetValue(Header)),
        result.GetValue(SplitSeed),
        result.GetValue(Classes));
}
