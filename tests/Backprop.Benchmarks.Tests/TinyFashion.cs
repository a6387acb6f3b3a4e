namespace Backprop.Benchmarks.Tests;

/// <summary>A directory of IDX files of Fashion-MNIST's shape (28 × 28 images, labels 0–9), small and random.</summary>
internal sealed class TinyFashion : IDisposable
{
    public TinyFashion(int samples = 64)
    {
        Directory.CreateDirectory(Path);
        var random = new Random(5);
        foreach (var part in new[] { "train", "t10k" })
        {
            var images = new byte[samples * 784];
            random.NextBytes(images);
            File.WriteAllBytes(System.IO.Path.Combine(Path, $"{part}-images-idx3-ubyte"), [.. Idx(3, [samples, 28, 28]), .. images]);
            File.WriteAllBytes(System.IO.Path.Combine(Path, $"{part}-labels-idx1-ubyte"), [.. Idx(1, [samples]), .. Enumerable.Range(0, samples).Select(i => (byte)(i % 10))]);
        }
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tiny-fashion-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(Path, recursive: true);

    /// <summary>The IDX header: two zero bytes, the type (8: unsigned bytes), the dimension count, each dimension big-endian.</summary>
    private static byte[] Idx(byte dimensions, int[] sizes) =>
        [0, 0, 8, dimensions, .. sizes.SelectMany(n => new[] { (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n })];
}
