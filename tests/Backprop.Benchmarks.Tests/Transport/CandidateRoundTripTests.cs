using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Backprop.Benchmarks.Transport;

namespace Backprop.Benchmarks.Tests.Transport;

/// <summary>
/// Each tensor-channel candidate, in one process over 127.0.0.1 (port 0): tensors of several sizes, each
/// with new contents, arrive intact in the receiver's float buffer (XxHash64 of the bytes sent and of the
/// bytes landed), and every message is acknowledged in order.
/// </summary>
[Collection(TensorChannel.Collection)]
public class CandidateRoundTripTests
{
    /// <summary>Float counts: one float, a count that ends mid-segment, and the three reference nets' parameter counts.</summary>
    private static readonly int[] Sizes = [1, 1001, 23_860, 235_000, 1_865_000];
    private const int MessagesPerSize = 3;

    public static TheoryData<string> Names() => [.. Candidate.All.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Names))]
    public async Task EveryTensorArrivesIntact(string name)
    {
        var candidate = Candidate.Find(name)!;
        var sent = new ConcurrentDictionary<long, (int Floats, ulong Hash)>();
        var landed = new ConcurrentDictionary<long, (int Floats, ulong Hash)>();
        using var ready = new SemaphoreSlim(0);
        var port = 0;

        var receiver = Task.Factory.StartNew(() =>
        {
            using var listener = candidate.Listen(0);
            port = listener.Port;
            ready.Release();
            using var link = listener.Accept();
            return Receiver.ServeAsync(link, (sequence, floats) => landed[sequence] = (floats.Length, Hash(floats))).AsTask().GetAwaiter().GetResult();
        }, TaskCreationOptions.LongRunning);
        Assert.True(ready.Wait(TimeSpan.FromSeconds(30)), "the receiver did not start listening");

        TransportCommand.OnOwnThread(() =>
        {
            using var link = candidate.Connect(port);
            var next = 0L;
            foreach (var floats in Sizes)
            {
                using var sender = new Sender(link, floats, window: 2, firstSequence: next);
                sender.SendAsync(MessagesPerSize, (sequence, tensor) =>
                {
                    // New contents every message; the first float is the sequence stamp and stays.
                    var random = new Random((int)sequence);
                    for (var i = 1; i < tensor.Length; i++) tensor[i] = (float)random.NextDouble();
                    sent[sequence] = (tensor.Length, Hash(tensor));
                }).AsTask().GetAwaiter().GetResult();
                next = sender.NextSequence;
            }
            using var end = new Sender(link, 0, window: 1, firstSequence: next);
            end.EndAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        });

        var received = await receiver.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Sizes.Length * MessagesPerSize, received);
        Assert.Equal(sent.OrderBy(p => p.Key), landed.OrderBy(p => p.Key));
        Assert.Equal(Sizes, sent.OrderBy(p => p.Key).Select(p => p.Value.Floats).Distinct());
    }

    [Fact]
    public void TheHeaderReadsBackWhatWasWritten()
    {
        var bytes = new byte[Header.Size];
        new Header(MessageKind.Data, 1L << 40, 7_460_000).Write(bytes);

        Assert.Equal(new Header(MessageKind.Data, 1L << 40, 7_460_000), Header.Read(bytes));
        Assert.Equal("BPTC"u8.ToArray(), bytes[..4]);
        Assert.All(bytes[28..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void AHeaderWithoutTheMagic_IsRefused()
    {
        var bytes = new byte[Header.Size];
        new Header(MessageKind.Data, 1, 4).Write(bytes);
        bytes[0] ^= 1;

        Assert.Throws<InvalidDataException>(() => Header.Read(bytes));
    }

    private static ulong Hash(ReadOnlySpan<float> floats) => XxHash64.HashToUInt64(MemoryMarshal.AsBytes(floats));
}
