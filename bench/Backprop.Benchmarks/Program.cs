using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Backprop.Benchmarks;

// dotnet run -c Release --project bench/Backprop.Benchmarks -- --filter '*'          (everything)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- --filter '*Gemm*'     (kernels only)
var config = DefaultConfig.Instance.AddColumn(new GflopsColumn());
BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(args, config);
