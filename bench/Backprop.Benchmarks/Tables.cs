using Spectre.Console;

namespace Backprop.Benchmarks;

/// <summary>The Spectre.Console consoles and tables the benchmark program prints with.</summary>
internal static class Tables
{
    /// <summary>
    /// The width of the output when it is not a terminal (a file, a pipe, a test's writer): Spectre would
    /// take 80 columns and wrap the wide tables; 200 leaves every table of the program on one line a row.
    /// </summary>
    public const int RedirectedWidth = 200;

    /// <summary>
    /// A console that writes to <paramref name="writer"/>: with the terminal's width and colours when it
    /// is the terminal, else as plain text (no escape sequences) <see cref="RedirectedWidth"/> columns wide.
    /// </summary>
    public static IAnsiConsole ConsoleFor(TextWriter writer)
    {
        var output = new AnsiConsoleOutput(writer);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = output,
            Ansi = output.IsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = output.IsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!output.IsTerminal) console.Profile.Width = RedirectedWidth;
        return console;
    }

    /// <summary>A table with a rule under its header and columns apart; columns after the first are right-aligned (numbers).</summary>
    public static Table Create(params string[] headers)
    {
        var table = new Table().Border(TableBorder.Simple);
        for (var i = 0; i < headers.Length; i++)
        {
            var column = new TableColumn(new Text(headers[i]));
            table.AddColumn(i == 0 ? column.LeftAligned() : column.RightAligned());
        }
        return table;
    }

    /// <summary>Adds a row of plain text cells (no markup: a '[' prints as itself).</summary>
    public static Table AddTextRow(this Table table, params string[] cells)
    {
        table.AddRow(cells.Select(c => new Text(c)).ToArray());
        return table;
    }

    /// <summary>
    /// Two columns of text, the names on the left: a run's header lines (machine, data, …), each value
    /// wrapped beside its name when the terminal is narrow.
    /// </summary>
    public static Grid Facts(IEnumerable<(string Name, string Value)> facts)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        foreach (var (name, value) in facts) grid.AddRow(new Text(name), new Text(value));
        return grid;
    }
}

/// <summary>
/// A table printed a row at a time, as the rows are measured: the columns have fixed widths, so each
/// row, printed as a grid of its own, lines up under the header, and the first column is left-aligned,
/// the others (numbers) right-aligned.
/// </summary>
internal sealed class StreamingTable(IAnsiConsole console, params (string Header, int Width)[] columns)
{
    /// <summary>Prints the header and a rule under each column.</summary>
    public void WriteHeader()
    {
        WriteRow([.. columns.Select(c => c.Header)]);
        WriteRow([.. columns.Select(c => new string('─', c.Width))]);
    }

    /// <summary>Prints one row of plain text cells.</summary>
    public void WriteRow(params string[] cells)
    {
        var grid = new Grid();
        for (var i = 0; i < columns.Length; i++)
        {
            var column = new GridColumn().Width(columns[i].Width).NoWrap().Padding(0, 0, i == columns.Length - 1 ? 0 : 2, 0);
            grid.AddColumn(i == 0 ? column.LeftAligned() : column.RightAligned());
        }
        grid.AddRow([.. cells.Select(c => new Text(c))]);
        console.Write(grid);
    }
}
