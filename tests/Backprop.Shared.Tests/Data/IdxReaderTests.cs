using System.IO.Compression;
using Backprop.Data;

namespace Backprop.Shared.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("idx-tests").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] bytes, bool gzip = false)
    {
        var path = Path.Combine(_dir, name);
        if (gzip)
        {
            using var file = File.Create(path);
            using var z = new GZipStream(file, CompressionLevel.Fastest);
            z.Write(bytes);
        }
        else
        {
            File.WriteAllBytes(path, bytes);
        }
        return path;
    }

    private static byte[] Images(int n, int rows, int cols, byte type = 0x08)
    {
        var header = new List<byte> { 0, 0, type, 3 };
        foreach (var d in new[] { n, rows, cols }) header.AddRange([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        return [.. header, .. Enumerable.Range(0, n * rows * cols).Select(i => (byte)i)];
    }

    private static byte[] Labels(params byte[] labels) =>
        [0, 0, 8, 1, 0, 0, (byte)(labels.Length >> 8), (byte)labels.Length, .. labels];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadPair_ValidFiles_ReadsPixelsAndLabels(bool gzip)
    {
        var images = Write("train-images-idx3-ubyte", Images(3, 2, 2), gzip);
        var labels = Write("train-labels-idx1-ubyte", Labels(2, 0, 1), gzip);
        var data = IdxReader.ReadPair(images, labels, "tiny");
        Assert.Equal(3, data.Count);
        Assert.Equal(4, data.FeatureCount);
        Assert.Equal(3, data.ClassCount);
        Assert.Equal([4f, 5, 6, 7], data.Row(1).ToArray());
        Assert.Equal([2, 0, 1], data.Labels.ToArray());
    }

    [Fact]
    public void Read_WrongMagic_NamesFileAndMagic()
    {
        var path = Write("bad", [0x50, 0x4B, 3, 4, 0, 0, 0, 0]);
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not an IDX file", e.Message);
    }

    [Fact]
    public void Read_TruncatedData_SaysHowMuchIsMissing()
    {
        var bytes = Images(2, 3, 3);
        var path = Write("short", bytes[..^5]);
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("18 bytes", e.Message);
        Assert.Contains("found 13", e.Message);
    }

    [Fact]
    public void Read_TruncatedGzip_IsAClearError()
    {
        var full = Write("full.gz", Images(50, 10, 10), gzip: true);
        var bytes = File.ReadAllBytes(full);
        var path = Write("cut.gz", bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Read_TruncatedHeader_IsAClearError()
    {
        var path = Write("header", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0]);
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains("truncated IDX header", e.Message);
    }

    [Fact]
    public void Read_UnsupportedElementType_SaysWhich()
    {
        var path = Write("floats", Images(1, 1, 1, type: 0x0D));
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains("0x0D", e.Message);
    }

    [Fact]
    public void Read_TrailingBytes_AreRejected()
    {
        var path = Write("long", [.. Images(1, 2, 2), 9]);
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(path));
        Assert.Contains("after the 4 bytes", e.Message);
    }

    [Fact]
    public void ReadPair_CountMismatch_NamesBothFiles()
    {
        var images = Write("i", Images(3, 2, 2));
        var labels = Write("l", Labels(1, 2));
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.ReadPair(images, labels, "x"));
        Assert.Contains("3 images", e.Message);
        Assert.Contains("2 labels", e.Message);
    }

    [Fact]
    public void ReadPair_EmptySet_IsRejected()
    {
        var images = Write("i", Images(0, 2, 2));
        var labels = Write("l", Labels());
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.ReadPair(images, labels, "x"));
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void Read_MissingFile_SaysNotFound()
    {
        var e = Assert.Throws<InvalidInputException>(() => IdxReader.Read(Path.Combine(_dir, "nope")));
        Assert.Contains("not found", e.Message);
    }
}
