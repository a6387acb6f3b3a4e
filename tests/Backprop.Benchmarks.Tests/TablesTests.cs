using Spectre.Console;

namespace Backprop.Benchmarks.Tests;

/// <summary>Output that is not a terminal: plain text, wide enough that no table wraps.</summary>
public class TablesTests
{
    [Fact]
    public void ConsoleFor_AWriterThatIsNoTerminal_PrintsWideTablesOneLineARowWithoutEscapes()
    {
        var output = new StringWriter();
        var console = Tables.ConsoleFor(output);
        var cells = Enumerable.Range(0, 9).Select(i => $"column number {i}").ToArray(); // 9 × 19 columns: more than 80, less than 200

        console.Write(Tables.Create(cells).AddTextRow([.. cells.Select(c => c.ToUpperInvariant())]));

        Assert.Equal(Tables.RedirectedWidth, console.Profile.Width);
        var lines = output.ToString().Split('\n').Where(l => l.Trim().Length > 0).ToArray();
        Assert.Equal(3, lines.Length); // header, rule, row
        Assert.True(lines[0].TrimEnd().Length > 80);
        Assert.Contains("COLUMN NUMBER 8", lines[2]);
        Assert.DoesNotContain('\u001b', output.ToString());
    }

    [Fact]
    public void AddTextRow_Brackets_PrintAsThemselves()
    {
        var output = new StringWriter();

        Tables.ConsoleFor(output).Write(Tables.Create("a", "b").AddTextRow("[red]x[/]", "[1]"));

        Assert.Contains("[red]x[/]", output.ToString());
        Assert.Contains("[1]", output.ToString());
    }

    [Fact]
    public void StreamingTable_RowsPrintedOneByOne_LineUpUnderTheHeader()
    {
        var output = new StringWriter();
        var table = new StreamingTable(Tables.ConsoleFor(output), ("s", 6), ("GFLOP/s", 10));

        table.WriteHeader();
        table.WriteRow("1.5", "98.7");
        table.WriteRow("12.5", "100.1");

        var lines = output.ToString().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("s ", lines[0]);
        Assert.All(lines, l => Assert.Equal(lines[0].Length, l.Length));
        Assert.EndsWith("GFLOP/s", lines[0]);
        Assert.EndsWith("98.7", lines[2]);
        Assert.EndsWith("100.1", lines[3]);
    }
}
