using Backprop.Benchmarks;

// dotnet run -c Release --project bench/Backprop.Benchmarks -- step [options]          (training throughput beside PyTorch)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- timeline [seconds]      (the kernels taking turns, window by window)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- kernels --filter '*'    (the BenchmarkDotNet benchmarks)
// dotnet run -c Release --project bench/Backprop.Benchmarks -- transport [options]     (tensor transports between two processes)
return BenchProgram.Run(args, Console.Out, Console.Error);
