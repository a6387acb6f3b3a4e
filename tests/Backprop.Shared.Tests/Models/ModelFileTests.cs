using Backprop;
using Backprop.Data;
using Backprop.Models;
using Backprop.Networks;

namespace Backprop.Shared.Tests.Models;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("model-tests").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Model Sample()
    {
        var (architecture, θ) = TestNets.Network([3, 4, 2], Activation.Tanh, Activation.Softmax, Cost.CrossEntropy, seed: 1);
        var scaling = new FeatureScaling(ScalingKind.Standard, [0.5f, 1, -1], [2, 0.5f, 1]);
        return new Model(architecture, θ, scaling, new Dictionary<string, string> { ["data"] = "unit", ["seed"] = "1" });
    }

    [Fact]
    public void SaveThenLoad_RoundTripsEverything()
    {
        var model = Sample();
        var path = Path.Combine(_dir, "m.bpm");
        ModelFile.Save(model, path);
        var loaded = ModelFile.Load(path);
        Assert.Equal(model.Architecture, loaded.Architecture);
        Assert.Equal(model.Parameters, loaded.Parameters);
        Assert.Equal(model.Scaling.Kind, loaded.Scaling.Kind);
        Assert.Equal(model.Scaling.Shift, loaded.Scaling.Shift);
        Assert.Equal(model.Scaling.Scale, loaded.Scaling.Scale);
        Assert.Equal(model.Metadata, loaded.Metadata);
        Assert.Single(Directory.GetFiles(_dir)); // no temporary file left behind
    }

    [Fact]
    public void Save_IntoAMissingDirectory_IsAnErrorNamingThePath()
    {
        var path = Path.Combine(_dir, "missing", "m.bpm");
        var refused = Assert.Throws<InvalidInputException>(() => ModelFile.Save(Sample(), path));
        Assert.Contains(path, refused.Message);
    }

    [Fact]
    public void CheckWritable_LeavesNothingBehindAndRefusesWhatCannotBeWritten()
    {
        ModelFile.CheckWritable(Path.Combine(_dir, "m.bpm"));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
        var missing = Path.Combine(_dir, "missing", "m.bpm");
        Assert.Contains(missing, Assert.Throws<InvalidInputException>(() => ModelFile.CheckWritable(missing)).Message);
        Assert.Contains("is a directory", Assert.Throws<InvalidInputException>(() => ModelFile.CheckWritable(_dir)).Message);
    }

    [Fact]
    public void Bytes_FollowTheDocumentedLayout()
    {
        var bytes = ModelFile.ToBytes(Sample());
        Assert.Equal("BPMD"u8.ToArray(), bytes[..4]);
        Assert.Equal(1, BitConverter.ToUInt16(bytes, 4));        // version
        Assert.Equal(4u, BitConverter.ToUInt32(bytes, 8));       // sections
        Assert.Equal("ARCH"u8.ToArray(), bytes[12..16]);
        Assert.Equal(20ul, BitConverter.ToUInt64(bytes, 16));    // 4 + 3·4 + 4
        Assert.Equal(3u, BitConverter.ToUInt32(bytes, 24));      // three layer sizes
        Assert.Equal(3u, BitConverter.ToUInt32(bytes, 28));
        Assert.Equal(4u, BitConverter.ToUInt32(bytes, 32));
        Assert.Equal(2u, BitConverter.ToUInt32(bytes, 36));
        Assert.Equal([1, 3, 1, 0], bytes[40..44]);              // tanh, softmax, cross-entropy, pad
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(bytes[..^32]), bytes[^32..]);
    }

    [Fact]
    public void Load_FlippedByte_ReportsChecksumMismatch()
    {
        var bytes = ModelFile.ToBytes(Sample());
        bytes[bytes.Length / 2] ^= 0x10;
        var e = Assert.Throws<InvalidInputException>(() => ModelFile.FromBytes(bytes, "m.bpm"));
        Assert.Equal("m.bpm: the model file is corrupt or truncated (SHA-256 checksum mismatch)", e.Message);
    }

    [Fact]
    public void Load_Truncated_IsRejected()
    {
        var path = Path.Combine(_dir, "cut.bpm");
        File.WriteAllBytes(path, ModelFile.ToBytes(Sample())[..100]);
        var e = Assert.Throws<InvalidInputException>(() => ModelFile.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("corrupt or truncated", e.Message);
    }

    [Fact]
    public void Load_NotAModel_SaysSo()
    {
        var e = Assert.Throws<InvalidInputException>(() => ModelFile.FromBytes("hello, this is not a model at all!!!!!!!!!!!!"u8, "x"));
        Assert.Contains("not a model file", e.Message);
    }

    [Fact]
    public void Load_NewerVersion_IsRefusedByName()
    {
        var bytes = ModelFile.ToBytes(Sample());
        bytes[4] = 9;
        var e = Assert.Throws<InvalidInputException>(() => ModelFile.FromBytes(bytes, "x"));
        Assert.Contains("version 9 is not supported", e.Message);
    }

    [Fact]
    public void Load_Missing_SaysNotFound()
    {
        var e = Assert.Throws<InvalidInputException>(() => ModelFile.Load(Path.Combine(_dir, "none.bpm")));
        Assert.Contains("not found", e.Message);
    }
}
