using System.Globalization;
using Backprop.Networks;

namespace Backprop.Benchmarks;

/// <summary>A reference net: its name in bench/nets.tsv ("784-256-128-10") and its architecture.</summary>
internal sealed record ReferenceNet(string Name, Architecture Architecture);

/// <summary>
/// The reference nets every benchmark runs, read from bench/nets.tsv: a header line, then one net a
/// line, tab-separated: name, layer sizes (comma-separated), hidden activation, output activation,
/// cost. The build copies the file beside the program; the shell scripts and the PyTorch peers
/// (bench/common.sh, bench/pytorch_bench.py) read the same file.
/// </summary>
internal static class ReferenceNets
{
    /// <summary>The file's name, beside the program and in bench/.</summary>
    public const string FileName = "nets.tsv";

    private static readonly string[] Header = ["name", "sizes", "hidden", "output", "cost"];
    private static readonly Lazy<ReferenceNet[]> Loaded = new(() =>
    {
        var path = FindFile();
        return Parse(File.ReadAllText(path), path);
    });

    /// <summary>Every reference net, in the file's order.</summary>
    public static IReadOnlyList<ReferenceNet> All => Loaded.Value;

    /// <summary>The names, comma-separated.</summary>
    public static string Names => string.Join(", ", All.Select(n => n.Name));

    /// <summary>The net of that name; <see cref="InvalidInputException"/> when there is none.</summary>
    public static ReferenceNet Find(string name) =>
        All.FirstOrDefault(n => n.Name == name) ?? throw new InvalidInputException($"{name} is not a reference net (bench/{FileName} has {Names})");

    /// <summary>
    /// The nets named in a comma-separated list, or all of them for "all"; <see cref="InvalidInputException"/>
    /// naming <paramref name="option"/> for a name that is not in the file.
    /// </summary>
    public static IReadOnlyList<ReferenceNet> Select(string text, string option)
    {
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return All;
        var names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new InvalidInputException($"{option} '{text}': expected net names separated by commas, or all");
        return [.. names.Select(name => All.FirstOrDefault(n => n.Name == name)
            ?? throw new InvalidInputException($"{option} {name}: expected one of {Names} or all"))];
    }

    /// <summary>The file beside the program, else bench/nets.tsv in the current directory or one above it.</summary>
    public static string FindFile()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, FileName);
        if (File.Exists(beside)) return beside;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "bench", FileName);
            if (File.Exists(path)) return path;
        }
        throw new InvalidInputException($"{FileName} not found beside the program ({AppContext.BaseDirectory}) nor in bench/ of the repository");
    }

    /// <summary>Reads the file's text; <paramref name="source"/> names it in errors.</summary>
    public static ReferenceNet[] Parse(string text, string source)
    {
        var lines = text.ReplaceLineEndings("\n").Split('\n');
        if (!lines[0].Split('\t').Select(f => f.Trim()).SequenceEqual(Header))
            throw new InvalidInputException($"{source}:1: expected the header line {string.Join("<tab>", Header)}");
        var nets = new List<ReferenceNet>();
        for (var i = 1; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            var where = $"{source}:{i + 1}";
            var fields = lines[i].Split('\t').Select(f => f.Trim()).ToArray();
            if (fields.Length != Header.Length) throw new InvalidInputException($"{where}: expected {Header.Length} tab-separated fields, found {fields.Length}");
            var sizes = fields[1].Split(',').Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1).ToArray();
            if (sizes.Any(n => n < 1)) throw new InvalidInputException($"{where}: sizes '{fields[1]}' are not positive whole numbers separated by commas");
            if (!Activations.TryParse(fields[2], out var hidden)) throw new InvalidInputException($"{where}: unknown hidden activation '{fields[2]}'");
            if (!Activations.TryParse(fields[3], out var output)) throw new InvalidInputException($"{where}: unknown output activation '{fields[3]}'");
            if (!Costs.TryParse(fields[4], out var cost)) throw new InvalidInputException($"{where}: unknown cost '{fields[4]}'");
            Architecture architecture;
            try
            {
                architecture = new Architecture(sizes, hidden, output, cost);
            }
            catch (ArgumentException e)
            {
                throw new InvalidInputException($"{where}: {e.Message}", e);
            }
            if (nets.Any(n => n.Name == fields[0])) throw new InvalidInputException($"{where}: {fields[0]} is named twice");
            nets.Add(new ReferenceNet(fields[0], architecture));
        }
        if (nets.Count == 0) throw new InvalidInputException($"{source}: no nets after the header line");
        return [.. nets];
    }
}
