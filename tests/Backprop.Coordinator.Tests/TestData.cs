namespace Backprop.Coordinator.Tests;

/// <summary>Finds the shared data sets beside the checkout (../shared/datasets), or $BACKPROP_DATASETS.</summary>
internal static class TestData
{
    public static string DataSets
    {
        get
        {
            var fromEnvironment = Environment.GetEnvironmentVariable("BACKPROP_DATASETS");
            if (!string.IsNullOrEmpty(fromEnvironment) && Directory.Exists(fromEnvironment)) return fromEnvironment;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "datasets");
                if (Directory.Exists(Path.Combine(candidate, "fashion-mnist"))) return candidate;
            }
            throw new InvalidOperationException("the shared data sets were not found: put shared/datasets beside the checkout or set BACKPROP_DATASETS");
        }
    }

    public static string FashionMnist => Path.Combine(DataSets, "fashion-mnist");
}

/// <summary>Runs the command line in-process and captures what it prints.</summary>
internal static class CommandLineRunner
{
    public static (int ExitCode, string Output, string Error) Run(params string[] args) => Testing.ProgramOutput.Capture(Backprop.Coordinator.Cli.CommandLine.Run, args);
}
