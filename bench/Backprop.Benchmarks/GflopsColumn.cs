using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Backprop.Benchmarks;

/// <summary>A benchmark that knows how many floating-point operations one invocation does.</summary>
public interface IFlopCount
{
    /// <summary>Floating-point operations of one invocation with the current parameters.</summary>
    double Flops { get; }
}

/// <summary>GFLOP/s = the benchmark's <see cref="IFlopCount.Flops"/> / mean time.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Floating-point operations per second (2 per multiply-add), from the mean time";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is null) return "-";
        // A fresh instance with the case's parameters says how much work one invocation is.
        var instance = Activator.CreateInstance(benchmarkCase.Descriptor.Type);
        if (instance is not IFlopCount counter) return "-";
        foreach (var parameter in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(instance, parameter.Value);
        return (counter.Flops / report.ResultStatistics.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture); // flop/ns = GFLOP/s
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
