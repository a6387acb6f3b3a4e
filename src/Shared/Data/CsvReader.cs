using System.Globalization;

namespace Backprop.Data;

/// <summary>How to read a CSV file of samples.</summary>
/// <param name="LabelColumn">0-based column of the integer label; negative counts from the end (−1: last).</param>
/// <param name="Header">Whether the first line is a header; null: it is one if any of its fields is not a number.</param>
/// <param name="Separator">The field separator.</param>
public sealed record CsvOptions(int LabelColumn = -1, bool? Header = null, char Separator = ',');

/// <summary>
/// Reads a labelled data set from CSV (raw or gzip): one sample per line, numeric features, one
/// integer label column. Every error names the file, the line and, where it helps, the column.
/// </summary>
public static class CsvReader
{
    /// <summary>Reads <paramref name="path"/>.</summary>
    public static DataSet Read(string path, CsvOptions? options = null)
    {
        using var stream = InputFiles.OpenMaybeGzip(path);
        try
        {
            using var reader = new StreamReader(stream);
            return Read(reader, path, Path.GetFileName(path), options ?? new CsvOptions());
        }
        catch (InvalidDataException e)
        {
            throw new InvalidInputException($"{path}: corrupt gzip stream ({e.Message})", e);
        }
    }

    /// <summary>Reads CSV text; <paramref name="source"/> names it in error messages.</summary>
    public static DataSet Read(TextReader reader, string source, string name, CsvOptions options)
    {
        var features = new List<float>();
        var labels = new List<int>();
        int fieldCount = -1, labelColumn = -1, firstDataLine = -1;
        var lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (line.Length == 0 || string.IsNullOrWhiteSpace(line)) continue;
            var fields = line.Split(options.Separator);

            if (fieldCount < 0)
            {
                var isHeader = options.Header ?? fields.Any(f => !double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
                fieldCount = fields.Length;
                if (fieldCount < 2)
                    throw new InvalidInputException($"{source} line {lineNumber}: found {fieldCount} field; a sample needs at least one feature and a label (is the separator '{options.Separator}'?)");
                labelColumn = options.LabelColumn < 0 ? fieldCount + options.LabelColumn : options.LabelColumn;
                if (labelColumn < 0 || labelColumn >= fieldCount)
                    throw new InvalidInputException($"{source} line {lineNumber}: label column {options.LabelColumn} does not exist in a line of {fieldCount} fields");
                if (isHeader) continue;
            }
            if (fields.Length != fieldCount)
                throw new InvalidInputException($"{source} line {lineNumber}: expected {fieldCount} fields, found {fields.Length}");
            if (firstDataLine < 0) firstDataLine = lineNumber;
            if (lineNumber - firstDataLine != labels.Count)
                throw new InvalidInputException($"{source} line {lineNumber}: blank lines between samples are not allowed");

            for (var c = 0; c < fields.Length; c++)
            {
                var field = fields[c].Trim();
                if (c == labelColumn)
                {
                    if (!int.TryParse(field, NumberStyles.Integer, CultureInfo.InvariantCulture, out var label))
                        throw new InvalidInputException($"{source} line {lineNumber}, column {c + 1}: label '{field}' is not an integer");
                    if (label < 0)
                        throw new InvalidInputException($"{source} line {lineNumber}, column {c + 1}: label {label} is out of range (labels are 0, 1, 2, …)");
                    labels.Add(label);
                }
                else
                {
                    if (!float.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                        throw new InvalidInputException($"{source} line {lineNumber}, column {c + 1}: '{field}' is not a number");
                    if (!float.IsFinite(value))
                        throw new InvalidInputException($"{source} line {lineNumber}, column {c + 1}: '{field}' is not a finite number");
                    features.Add(value);
                }
            }
        }
        if (labels.Count == 0) throw new InvalidInputException($"{source}: no samples (the file is empty or holds only a header)");
        var classCount = labels.Max() + 1;
        return new DataSet(name, [.. features], fieldCount - 1, [.. labels], classCount, new SampleOrigin(source, "line", firstDataLine));
    }
}
