using System.Runtime.InteropServices;
using Backprop.Engine;
using Backprop.Training;

namespace Backprop.Shared.Tests.Engine;

/// <summary>
/// The weight-gradient micro-tile against its definition, bit for bit: every element of a chunk's sum is
/// one FMA chain from zero over the chunk's steps in order, and the chunk sums are added along the chunk
/// tree by <see cref="ChunkTreeCounter"/>. The AVX2 kernel adds them by hand, in registers
/// (<c>Kernels.TreePairs16</c> and <c>TreeSpine16</c>), so this is what holds it to the helper.
/// </summary>
public unsafe class TreeTileTests
{
    /// <summary>(k, chunk size): one chunk, a short one, odd and even chunk counts, a short last chunk, chunks of one step.</summary>
    public static TheoryData<int, int> Shapes() => new()
    {
        { 1, 1 }, { 5, 16 }, { 16, 16 }, { 17, 16 }, { 48, 16 }, { 50, 16 }, { 80, 16 }, { 255, 16 },
        { 256, 16 }, { 272, 16 }, { 100, 7 }, { 37, 4 }, { 33, 1 }, { 64, 3 }, { 200, 32 }, { 256, 256 },
    };

    [WideKernelTheory]
    [MemberData(nameof(Shapes))]
    public void TreeTile16_EqualsChunkSumsAddedByTheCounter_Bitwise(int k, int chunkSize) =>
        AssertTreeTileEqualsCounter(Kernels.WideWidth, k, chunkSize);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TreeTile8_EqualsChunkSumsAddedByTheCounter_Bitwise(int k, int chunkSize) =>
        AssertTreeTileEqualsCounter(Kernels.PortableWidth, k, chunkSize);

    private static void AssertTreeTileEqualsCounter(int width, int k, int chunkSize)
    {
        var tileFloats = Kernels.TileRows * width;
        var a = Values(k * Kernels.TileRows, seed: k);        // packed A: step p holds rows 0…5 at 6p
        var b = Values(k * width, seed: k + chunkSize);       // packed B: step p holds columns 0…W−1 at W·p
        var depth = Gemm.StackDepth(k, chunkSize);
        var expected = new float[depth * tileFloats];
        var actual = new float[tileFloats];
        var stack = new float[depth * tileFloats];
        fixed (float* pa = a, pb = b, pe = expected, pc = actual, ps = stack)
        {
            var slots = new TileSlots(pe, tileFloats);
            var tree = new ChunkTreeCounter();
            for (var start = 0; start < k; start += chunkSize)
            {
                var chunk = slots.Pointer(tree.Depth);
                for (var r = 0; r < Kernels.TileRows; r++)
                {
                    for (var j = 0; j < width; j++)
                    {
                        var c = 0f;
                        for (var p = start; p < Math.Min(start + chunkSize, k); p++) c = MathF.FusedMultiplyAdd(a[p * Kernels.TileRows + r], b[p * width + j], c);
                        chunk[r * width + j] = c;
                    }
                }
                tree.Push(ref slots);
            }
            tree.Fold(ref slots);

            Kernels.TreeTile(width, k, chunkSize, pa, pb, pc, width, ps);
        }
        Assert.Equal(Bits(expected.AsSpan(0, tileFloats)), Bits(actual));
    }

    /// <summary>Values of both signs over six orders of magnitude, so that another order of the additions shows in the bits.</summary>
    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = (float)((2 * random.NextDouble() - 1) * Math.Pow(2, random.Next(-10, 11)));
        return values;
    }

    private static int[] Bits(ReadOnlySpan<float> values) => MemoryMarshal.Cast<float, int>(values).ToArray();
}

/// <summary>A theory that runs only where the 16-wide AVX2 + FMA kernel can, and says why it was skipped elsewhere.</summary>
public sealed class WideKernelTheoryAttribute : TheoryAttribute
{
    /// <summary>Skips the theory on a processor without AVX2 and FMA.</summary>
    public WideKernelTheoryAttribute()
    {
        if (!Kernels.WideSupported) Skip = "this processor lacks AVX2 + FMA, which the 16-wide kernel under test needs";
    }
}
