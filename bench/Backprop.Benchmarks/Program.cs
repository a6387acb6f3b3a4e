using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Backprop.Benchmarks;

// dotnet run -c Release --project bench/Backprop.Benchmarks -- --filter '*'          (everything)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- --filter '*Gemm*'     (kernels only)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- timeline [seconds]  (the kernels taking turns, window by window)
if (args.Length > 0 && args[0] == "timeline")
{
    var seconds = 60.0;
    if (args.Length > 2 || args.Length == 2 && !(double.TryParse(args[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out seconds) && seconds > 0))
    {
        Console.Error.WriteLine($"timeline takes one optional argument, the seconds to run (a positive number; default 60), not '{string.Join(' ', args[1..])}'");
        return 2;
    }
    if (!Backprop.Engine.Kernels.WideSupported)
    {
        Console.Error.WriteLine("timeline compares the AVX2 + FMA kernels, and this processor has not got them");
        return 2;
    }
    KernelTimeline.Run(seconds);
    return 0;
}
var config = DefaultConfig.Instance.AddColumn(new GflopsColumn());
BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(args, config);
return 0;
