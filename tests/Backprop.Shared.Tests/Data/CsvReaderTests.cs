using Backprop.Data;

namespace Backprop.Shared.Tests.Data;

public class CsvReaderTests
{
    private static DataSet Read(string text, CsvOptions? options = null) =>
        CsvReader.Read(new StringReader(text), "test.csv", "test", options ?? new CsvOptions());

    [Fact]
    public void Read_NoHeader_LabelLast()
    {
        var data = Read("1,2,0\n3.5,-4e1,2\n");
        Assert.Equal(2, data.Count);
        Assert.Equal(2, data.FeatureCount);
        Assert.Equal(3, data.ClassCount);
        Assert.Equal([3.5f, -40f], data.Row(1).ToArray());
        Assert.Equal([0, 2], data.Labels.ToArray());
    }

    [Fact]
    public void Read_HeaderDetectedAndLabelFirst()
    {
        var data = Read("label,a,b\n1,0.5,0.25\n0,1,2\n", new CsvOptions(LabelColumn: 0));
        Assert.Equal(2, data.Count);
        Assert.Equal([0.5f, 0.25f], data.Row(0).ToArray());
        Assert.Equal("test.csv line 3", data.Describe(1));
    }

    /// <summary>A line the reader cannot take is refused with its line, column and what is wrong with it.</summary>
    [Theory]
    [InlineData("1,2,0\n1,2,3,0\n", "test.csv line 2: expected 3 fields, found 4")]                                      // a ragged line
    [InlineData("1,2,0\n1,abc,1\n", "test.csv line 2, column 2: 'abc' is not a number")]                                // a feature that is no number
    [InlineData("1,2,0.5\n", "test.csv line 1, column 3: label '0.5' is not an integer")]                                 // a label that is no integer
    [InlineData("1,2,0\n1,2,-1\n", "test.csv line 2, column 3: label -1 is out of range (labels are 0, 1, 2, …)")]        // a negative label
    [InlineData("1,NaN,0\n", "test.csv line 1, column 2: 'NaN' is not a finite number")]                                  // NaN
    public void Read_BadField_IsRefusedNamingWhereAndWhat(string text, string message)
    {
        var e = Assert.Throws<InvalidInputException>(() => Read(text));
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a,b,label\n")]
    [InlineData("\n\n")]
    public void Read_NoSamples_IsRejected(string text)
    {
        var e = Assert.Throws<InvalidInputException>(() => Read(text));
        Assert.Contains("no samples", e.Message);
    }

    [Fact]
    public void WithClassCount_LabelBeyondClasses_NamesTheSample()
    {
        var data = Read("1,2,0\n1,2,7\n");
        var e = Assert.Throws<InvalidInputException>(() => data.WithClassCount(5));
        Assert.Equal("test.csv line 2: label 7 is out of range for 5 classes (labels must be 0 … 4)", e.Message);
    }

    [Fact]
    public void Digits_Embedded_Has1797SamplesOf64Features()
    {
        var digits = BuiltInData.Digits();
        Assert.Equal(1797, digits.Count);
        Assert.Equal(64, digits.FeatureCount);
        Assert.Equal(10, digits.ClassCount);
        Assert.Equal(16f, digits.Features.ToArray().Max());
    }
}
