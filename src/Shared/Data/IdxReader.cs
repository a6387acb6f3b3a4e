using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed: a big-endian int32
/// magic (two zero bytes, the element type, the number of dimensions), one big-endian int32 per
/// dimension, then the elements row-major. Only unsigned bytes (type 0x08) are supported.
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByte = 0x08;

    /// <summary>The dimensions and the raw elements of an IDX file.</summary>
    public static (int[] Dimensions, byte[] Data) Read(string path)
    {
        using var stream = InputFiles.OpenMaybeGzip(path);
        return Read(stream, path);
    }

    /// <summary>Reads IDX from a stream; <paramref name="name"/> names it in error messages.</summary>
    public static (int[] Dimensions, byte[] Data) Read(Stream stream, string name)
    {
        try
        {
            Span<byte> magic = stackalloc byte[4];
            if (stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4)
                throw new InvalidInputException($"{name}: not an IDX file (shorter than its 4-byte magic number)");
            if (magic[0] != 0 || magic[1] != 0 || magic[3] is 0 or > 4)
                throw new InvalidInputException($"{name}: not an IDX file (magic number 0x{Convert.ToHexString(magic)}, expected 0x000008NN with 1-4 dimensions)");
            if (magic[2] != UnsignedByte)
                throw new InvalidInputException($"{name}: IDX element type 0x{magic[2]:X2} is not supported (only unsigned bytes, 0x08)");

            var dimensions = new int[magic[3]];
            Span<byte> word = stackalloc byte[4];
            long total = 1;
            for (var k = 0; k < dimensions.Length; k++)
            {
                if (stream.ReadAtLeast(word, 4, throwOnEndOfStream: false) < 4)
                    throw new InvalidInputException($"{name}: truncated IDX header (dimension {k + 1} of {dimensions.Length} missing)");
                dimensions[k] = BinaryPrimitives.ReadInt32BigEndian(word);
                if (dimensions[k] < 0) throw new InvalidInputException($"{name}: IDX dimension {k + 1} is negative ({dimensions[k]})");
                total *= dimensions[k];
                if (total > Array.MaxLength) throw new InvalidInputException($"{name}: IDX data of {total} elements is too large");
            }

            var data = new byte[total];
            var read = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (read < data.Length)
                throw new InvalidInputException($"{name}: truncated IDX file: the header ({string.Join(" × ", dimensions)}) announces {data.Length} bytes of data, found {read}");
            if (stream.ReadByte() >= 0)
                throw new InvalidInputException($"{name}: IDX file has data after the {data.Length} bytes its header ({string.Join(" × ", dimensions)}) announces");
            return (dimensions, data);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidInputException($"{name}: corrupt gzip stream ({e.Message})", e);
        }
    }

    /// <summary>
    /// A data set from an images file (n × rows × cols, or n × d) and a labels file (n); pixel values
    /// are kept as 0 … 255 (scaling comes later).
    /// </summary>
    public static DataSet ReadPair(string imagesPath, string labelsPath, string name)
    {
        var (imageDims, pixels) = Read(imagesPath);
        var (labelDims, labelBytes) = Read(labelsPath);
        if (imageDims.Length < 2)
            throw new InvalidInputException($"{imagesPath}: an images file needs at least 2 dimensions (samples × features), this one has {imageDims.Length}");
        if (labelDims.Length != 1)
            throw new InvalidInputException($"{labelsPath}: a labels file has 1 dimension, this one has {labelDims.Length}");
        if (imageDims[0] != labelDims[0])
            throw new InvalidInputException($"{imagesPath} holds {imageDims[0]} images but {labelsPath} holds {labelDims[0]} labels");
        var count = imageDims[0];
        if (count == 0) throw new InvalidInputException($"{imagesPath}: the data set is empty");
        var featureCount = pixels.Length / count;
        if (featureCount == 0) throw new InvalidInputException($"{imagesPath}: images have no pixels");

        var features = new float[pixels.Length];
        for (var i = 0; i < pixels.Length; i++) features[i] = pixels[i];
        var labels = new int[count];
        var classCount = 0;
        for (var i = 0; i < count; i++)
        {
            labels[i] = labelBytes[i];
            classCount = Math.Max(classCount, labels[i] + 1);
        }
        return new DataSet(name, features, featureCount, labels, classCount, new SampleOrigin(labelsPath, "record", 0));
    }
}
