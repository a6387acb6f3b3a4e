namespace Backprop.Testing;

/// <summary>Runs a program's command line in-process and captures what it prints (linked into every test project that runs one).</summary>
internal static class ProgramOutput
{
    /// <summary>Calls <paramref name="run"/> (a program's Run(args, output, error)) and returns its exit code and both streams.</summary>
    public static (int Code, string Output, string Error) Capture(Func<string[], TextWriter, TextWriter, int> run, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
