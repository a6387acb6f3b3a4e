using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Backprop.Channel;
using Backprop.Protocol;

namespace Backprop.Runtime.Tests.Channel;

/// <summary>Two channels (or a channel and a plain socket) on loopback ports chosen by the system.</summary>
public sealed class TensorChannelTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
    }

    /// <summary>Records what a channel reports; optionally gives each payload straight back to the channel's pool.</summary>
    private sealed class Inbox : ITensorInbox
    {
        public BlockingCollection<(string Peer, FrameHeader Header, float[] Payload)> Frames { get; } = [];
        public BlockingCollection<(string Peer, string Reason)> Failures { get; } = [];
        public BlockingCollection<string> Warnings { get; } = [];
        public FloatArrayPool? ReturnTo { get; set; }

        public void Received(string peer, FrameHeader header, float[] payload)
        {
            if (ReturnTo is { } pool)
            {
                Frames.Add((peer, header, payload.ToArray()));
                pool.Return(payload);
            }
            else Frames.Add((peer, header, payload));
        }

        public void Failed(string peer, string reason) => Failures.Add((peer, reason));
    }

    private (TensorChannel Channel, Inbox Inbox) Open(int maximumValues = 1 << 20)
    {
        var inbox = new Inbox();
        var channel = TensorChannel.Open(new ChannelSettings(), inbox, inbox.Warnings.Add);
        channel.MaximumValues = maximumValues;
        _owned.Add(channel);
        return (channel, inbox);
    }

    private static T Take<T>(BlockingCollection<T> collection, string what)
    {
        Assert.True(collection.TryTake(out var item, Timeout), $"no {what} within {Timeout.TotalSeconds} s");
        return item!;
    }

    private static void Wait(Task task, string what) => Assert.True(task.Wait(Timeout), $"no {what} within {Timeout.TotalSeconds} s");

    private static FrameHeader Weights(long version, int count, Guid? run = null) => new(FrameKind.Weights, run ?? RunA, version, version, Count: count);

    private static readonly Guid RunA = Guid.Parse("6d1f3c9a-2b7e-4e0f-9a55-3c1d2e4f5a6b");

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue)); // any bits, NaNs included
        return values;
    }

    private static void AssertSameBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"value {i}: {expected[i]} vs {actual[i]}");
    }

    /// <summary>A fresh channel can still reach <paramref name="receiver"/> and be heard.</summary>
    private void AssertStillAccepts(TensorChannel receiver, Inbox inbox)
    {
        var (sender, _) = Open();
        var values = Values(4, seed: 99); // within every test's MaximumValues
        sender.Send(receiver.Endpoint, Weights(42, values.Length), values);
        var frame = Take(inbox.Frames, "frame from a fresh channel");
        Assert.Equal((sender.Endpoint, 42L), (frame.Peer, frame.Header.Version));
        AssertSameBits(values, frame.Payload);
    }

    // ---- Round trips ---------------------------------------------------------------------------

    [Fact]
    public void Open_PortZero_ListensOnAPortOfItsOwn()
    {
        var (a, _) = Open();
        var (b, _) = Open();
        Assert.StartsWith("127.0.0.1:", a.Endpoint);
        Assert.NotEqual(a.Endpoint, b.Endpoint);
        Assert.True(int.Parse(a.Endpoint["127.0.0.1:".Length..]) > 0);
    }

    [Fact]
    public void Open_PublicHost_NamesTheEndpoint()
    {
        var inbox = new Inbox();
        using var channel = TensorChannel.Open(new ChannelSettings("127.0.0.1", 0, "node-7.example"), inbox, inbox.Warnings.Add);
        Assert.StartsWith("node-7.example:", channel.Endpoint);
    }

    [Fact]
    public void Frames_ArriveInOrder_WithTheirBitsAndHeaders_FromTheSendersEndpoint()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        const int frames = 60;
        var sent = new int[frames];
        var allSent = new CountdownEvent(frames);
        var headers = new FrameHeader[frames];
        var payloads = new float[frames][];
        for (var i = 0; i < frames; i++)
        {
            payloads[i] = Values(i * 37 % 1000, seed: i); // sizes 0 … 999, one empty
            headers[i] = new FrameHeader(i % 2 == 0 ? FrameKind.Weights : FrameKind.NodeSum, RunA, Step: i, Version: 1000 + i,
                NodeStart: i, NodeSize: 2 * i + 1, SampleCount: 3 * i, CorrectCount: i / 2, LossSum: i * 0.1, ComputeSeconds: 1.0 / (i + 1),
                Count: payloads[i].Length, Segment: i % 3);
            var k = i;
            sender.Send(receiver.Endpoint, headers[i], payloads[i], () =>
            {
                Interlocked.Increment(ref sent[k]);
                allSent.Signal();
            });
        }
        for (var i = 0; i < frames; i++)
        {
            var frame = Take(inbox.Frames, $"frame {i}");
            Assert.Equal(sender.Endpoint, frame.Peer);
            Assert.Equal(headers[i], frame.Header);
            AssertSameBits(payloads[i], frame.Payload);
        }
        Assert.True(allSent.Wait(Timeout), $"{allSent.CurrentCount} sent callbacks missing");
        Assert.All(sent, count => Assert.Equal(1, count));
        Assert.Empty(inbox.Failures);
    }

    [Fact]
    public void Send_OnlyTheAnnouncedCountOfTheArrayTravels()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        var array = Values(100, seed: 1);
        sender.Send(receiver.Endpoint, Weights(1, 10), array);
        var frame = Take(inbox.Frames, "frame");
        Assert.Equal(10, frame.Header.Count);
        AssertSameBits(array.AsSpan(0, 10), frame.Payload);
        Assert.Throws<ArgumentException>(() => sender.Send(receiver.Endpoint, Weights(2, 101), array));
    }

    [Fact]
    public void BothWays_EachSideSeesTheOthersEndpoint()
    {
        var (a, aInbox) = Open();
        var (b, bInbox) = Open();
        a.Send(b.Endpoint, Weights(1, 3), (float[])[1f, 2f, 3f]);
        b.Send(a.Endpoint, Weights(2, 2), (float[])[4f, 5f]);
        var atB = Take(bInbox.Frames, "frame at b");
        var atA = Take(aInbox.Frames, "frame at a");
        Assert.Equal((a.Endpoint, 1L), (atB.Peer, atB.Header.Version));
        Assert.Equal((b.Endpoint, 2L), (atA.Peer, atA.Header.Version));
    }

    [Fact]
    public void PooledTensor_ReleasedBeforeTheWrite_IsGivenBackOnceAfterIt()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        var values = Values(5000, seed: 3);
        var givenBack = 0;
        var back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tensor = FloatTensor.Pooled(values, array =>
        {
            Assert.Same(values, array);
            Interlocked.Increment(ref givenBack);
            back.TrySetResult();
        });
        sender.Send(receiver.Endpoint, new FrameHeader(FrameKind.NodeSum, RunA, 5, 5), tensor);
        tensor.Release(); // the caller is done; the send still holds it
        var frame = Take(inbox.Frames, "frame");
        Assert.Equal(values.Length, frame.Header.Count); // the count is the tensor's
        AssertSameBits(values, frame.Payload);
        Wait(back.Task, "give-back");
        // Flush the sender's queue: once a later frame's callback ran, nothing of the first is pending.
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Send(receiver.Endpoint, Weights(6, 1), (float[])[0f], flushed.SetResult);
        Wait(flushed.Task, "second send");
        Assert.Equal(1, Volatile.Read(ref givenBack));
    }

    [Fact]
    public void PooledTensor_StillHeldAfterTheWrite_IsGivenBackAtTheLastRelease()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        var values = Values(64, seed: 4);
        var givenBack = 0;
        var tensor = FloatTensor.Pooled(values, _ => Interlocked.Increment(ref givenBack));
        tensor.Hold(); // two holders besides the send
        sender.Send(receiver.Endpoint, new FrameHeader(FrameKind.Weights, RunA, 1, 1), tensor);
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Send(receiver.Endpoint, Weights(2, 1), (float[])[0f], flushed.SetResult);
        Wait(flushed.Task, "the send after the tensor");
        Take(inbox.Frames, "the tensor's frame");
        Assert.Equal(0, Volatile.Read(ref givenBack));
        tensor.Release();
        Assert.Equal(0, Volatile.Read(ref givenBack));
        tensor.Release();
        Assert.Equal(1, Volatile.Read(ref givenBack));
    }

    [Fact]
    public void PooledTensor_SentToNobody_IsStillGivenBackOnce()
    {
        var (sender, inbox) = Open();
        var givenBack = 0;
        var back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tensor = FloatTensor.Pooled(Values(8, seed: 5), _ =>
        {
            Interlocked.Increment(ref givenBack);
            back.TrySetResult();
        });
        sender.Send(ClosedEndpoint(), new FrameHeader(FrameKind.NodeSum, RunA, 1, 1), tensor);
        tensor.Release();
        Take(inbox.Failures, "failure");
        Wait(back.Task, "give-back");
        Assert.Equal(1, Volatile.Read(ref givenBack));
    }

    [Fact]
    public void ManyFramesOfOneSize_ReuseThePoolsArrays()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        var values = Values(4096, seed: 6);
        for (var i = 0; i < 100; i++)
        {
            sender.Send(receiver.Endpoint, Weights(i, values.Length), values);
            var frame = Take(inbox.Frames, $"frame {i}");
            Assert.Equal(i, frame.Header.Version);
            AssertSameBits(values, frame.Payload);
            receiver.Pool.Return(frame.Payload);
        }
        Assert.Equal(1, receiver.Pool.Allocated);
    }

    [Fact]
    public void ManyFramesInABurst_ReuseThePoolsArrays_WhenTheInboxGivesEachBack()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open();
        inbox.ReturnTo = receiver.Pool;
        var values = Values(1000, seed: 7);
        for (var i = 0; i < 500; i++) sender.Send(receiver.Endpoint, Weights(i, values.Length), values);
        for (var i = 0; i < 500; i++) Assert.Equal(i, Take(inbox.Frames, $"frame {i}").Header.Version);
        Assert.Equal(1, receiver.Pool.Allocated);
    }

    [Fact]
    public void Pool_GivesArraysOfExactlyTheLengthAsked_AndKeepsOnlyAFew()
    {
        var pool = new FloatArrayPool(keepPerLength: 2);
        var a = pool.Rent(10);
        var b = pool.Rent(10);
        var c = pool.Rent(10);
        Assert.Equal(10, a.Length);
        Assert.Equal(3, pool.Allocated);
        pool.Return(a);
        pool.Return(b);
        pool.Return(c); // beyond what the pool keeps
        Assert.Equal(7, pool.Rent(7).Length);
        Assert.Equal(4, pool.Allocated);
        var again = new[] { pool.Rent(10), pool.Rent(10) };
        Assert.Equal(4, pool.Allocated);
        Assert.Contains(a, again);
        pool.Rent(10);
        Assert.Equal(5, pool.Allocated);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(-1));
    }

    // ---- Rejections ----------------------------------------------------------------------------

    /// <summary>A plain socket that speaks the framing by hand.</summary>
    private sealed class RawPeer : IDisposable
    {
        private readonly Socket _socket = new(SocketType.Stream, ProtocolType.Tcp);

        public RawPeer(string endpoint)
        {
            var colon = endpoint.LastIndexOf(':');
            _socket.Connect(IPAddress.Parse(endpoint[..colon]), int.Parse(endpoint[(colon + 1)..]));
        }

        public void Hello(string name)
        {
            var hello = FrameHeader.HelloPayload(name);
            Frame(new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: hello.Length), hello);
        }

        /// <summary>Writes <paramref name="header"/> with its right checksum, then <paramref name="wire"/> (the payload as sent, by default the one checksummed).</summary>
        public void Frame(FrameHeader header, ReadOnlySpan<byte> payload, Action<byte[], byte[]>? corrupt = null)
        {
            var h = new byte[FrameHeader.Size];
            header.Write(h, payload);
            var p = payload.ToArray();
            corrupt?.Invoke(h, p);
            Raw([.. h, .. p]);
        }

        /// <summary>Writes bytes; the other side may already have closed (then the bytes are lost, as on a real network).</summary>
        public void Raw(byte[] bytes)
        {
            try
            {
                _socket.Send(bytes);
            }
            catch (SocketException)
            {
            }
        }

        public void Close()
        {
            _socket.Shutdown(SocketShutdown.Send);
            _socket.Close();
        }

        public void Dispose() => _socket.Dispose();
    }

    private RawPeer Raw(TensorChannel receiver)
    {
        var raw = new RawPeer(receiver.Endpoint);
        _owned.Add(raw);
        return raw;
    }

    private const string RawName = "10.9.8.7:6543";

    [Fact]
    public void CorruptedPayloadByte_IsReportedAndNeverDelivered()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Hello(RawName);
        var good = Values(32, seed: 8);
        raw.Frame(Weights(1, 32), FrameHeader.Bytes(good));
        raw.Frame(Weights(2, 32), FrameHeader.Bytes(good), (_, payload) => payload[77] ^= 0x10);
        raw.Frame(Weights(3, 32), FrameHeader.Bytes(good)); // after the bad frame: the connection is gone

        var first = Take(inbox.Frames, "the good frame");
        Assert.Equal((RawName, 1L), (first.Peer, first.Header.Version));
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(RawName, failure.Peer);
        Assert.Contains("checksum", failure.Reason);
        Assert.Contains("step 2", failure.Reason);
        Assert.Contains("checksum", Take(inbox.Warnings, "warning"));
        Assert.Empty(inbox.Frames);
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Failures);
    }

    [Fact]
    public void CorruptedHeaderByte_IsReportedAndNeverDelivered()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Hello(RawName);
        raw.Frame(Weights(2, 4), FrameHeader.Bytes([1f, 2f, 3f, 4f]), (header, _) => header[32] ^= 1); // the version
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(RawName, failure.Peer);
        Assert.Contains("checksum", failure.Reason);
        Assert.Empty(inbox.Frames);
        AssertStillAccepts(receiver, inbox);
    }

    [Fact]
    public void TruncatedFrame_IsReportedAndNeverDelivered()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Hello(RawName);
        var values = FrameHeader.Bytes(Values(1000, seed: 9)).ToArray();
        var header = new byte[FrameHeader.Size];
        Weights(1, 1000).Write(header, values);
        raw.Raw([.. header, .. values.AsSpan(0, 1000)]); // 1,000 of the 4,000 bytes announced
        raw.Close();
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(RawName, failure.Peer);
        Assert.Contains("closed the connection", failure.Reason);
        Assert.Empty(inbox.Frames);
        AssertStillAccepts(receiver, inbox);
    }

    [Fact]
    public void TruncatedHeader_IsReportedAndNeverDelivered()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Hello(RawName);
        var header = new byte[FrameHeader.Size];
        Weights(1, 0).Write(header, []);
        raw.Raw(header[..40]);
        raw.Close();
        Assert.Equal(RawName, Take(inbox.Failures, "failure").Peer);
        Assert.Empty(inbox.Frames);
        AssertStillAccepts(receiver, inbox);
    }

    [Fact]
    public void RandomBytesWithoutHello_AreOnlyWarnedAbout()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        var bytes = new byte[4096];
        new Random(10).NextBytes(bytes);
        bytes[0] = 0; // whatever else, not the magic
        raw.Raw(bytes);
        var warning = Take(inbox.Warnings, "warning");
        Assert.Contains("rejecting the connection from tcp:", warning);
        Assert.Contains("not a tensor-channel frame", warning);
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Failures); // the peer never said who it is
        Assert.Empty(inbox.Warnings);
    }

    [Fact]
    public void FewBytesThenClose_WithoutHello_AreOnlyWarnedAbout()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Raw([1, 2, 3]);
        raw.Close();
        Assert.Contains("closed before it said who it is", Take(inbox.Warnings, "warning"));
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Failures);
    }

    [Fact]
    public void FirstFrameNotHello_IsRejectedWithoutDelivery()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Frame(Weights(1, 2), FrameHeader.Bytes([1f, 2f]));
        Assert.Contains("the first frame is Weights, not Hello", Take(inbox.Warnings, "warning"));
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Failures);
    }

    [Fact]
    public void HelloWithABadChecksumOrTooLong_IsRejectedWithoutAPeer()
    {
        var (receiver, inbox) = Open();
        var bad = Raw(receiver);
        var hello = FrameHeader.HelloPayload(RawName);
        bad.Frame(new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: hello.Length), hello, (_, payload) => payload[0] ^= 1);
        Assert.Contains("the Hello's checksum does not match", Take(inbox.Warnings, "warning"));
        var tooLong = Raw(receiver);
        tooLong.Hello(new string('x', 513));
        Assert.Contains("a Hello of 513 bytes", Take(inbox.Warnings, "warning"));
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Failures);
    }

    [Fact]
    public void SecondHello_IsReported()
    {
        var (receiver, inbox) = Open();
        var raw = Raw(receiver);
        raw.Hello(RawName);
        raw.Hello("10.0.0.1:1");
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(RawName, failure.Peer);
        Assert.Contains("a second Hello", failure.Reason);
        AssertStillAccepts(receiver, inbox);
    }

    [Fact]
    public void FrameLargerThanMaximumValues_IsReportedAndNeverDelivered()
    {
        var (receiver, inbox) = Open(maximumValues: 100);
        var raw = Raw(receiver);
        raw.Hello(RawName);
        raw.Frame(Weights(1, 100), FrameHeader.Bytes(Values(100, seed: 11))); // at the limit: fine
        raw.Frame(Weights(2, 101), FrameHeader.Bytes(Values(101, seed: 12)));
        Assert.Equal(1, Take(inbox.Frames, "the frame at the limit").Header.Version);
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(RawName, failure.Peer);
        Assert.Contains("101 values, more than the run's 100", failure.Reason);
        Assert.Empty(inbox.Frames);
        AssertStillAccepts(receiver, inbox);
    }

    [Fact]
    public void FrameLargerThanMaximumValues_FromAChannel_IsRejectedAndTheSenderCanReconnect()
    {
        var (sender, _) = Open();
        var (receiver, inbox) = Open(maximumValues: 10);
        sender.Send(receiver.Endpoint, Weights(1, 11), Values(11, seed: 13));
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(sender.Endpoint, failure.Peer);
        Assert.Contains("more than the run's 10", failure.Reason);
        receiver.MaximumValues = 11;
        // The sender learns of the closed connection only by writing to it: keep sending until a frame gets through.
        var deadline = DateTime.UtcNow + Timeout;
        (string Peer, FrameHeader Header, float[] Payload) frame = default;
        var version = 2;
        while (!inbox.Frames.TryTake(out frame, TimeSpan.FromMilliseconds(100)))
        {
            Assert.True(DateTime.UtcNow < deadline, "no frame got through after the rejection");
            sender.Send(receiver.Endpoint, Weights(version++, 11), Values(11, seed: 14));
        }
        Assert.Equal(sender.Endpoint, frame.Peer);
        Assert.Equal(11, frame.Header.Count);
    }

    [Fact]
    public void AllRejections_InARow_LeaveTheListenerAccepting()
    {
        var (receiver, inbox) = Open(maximumValues: 8);
        Raw(receiver).Raw([.. Enumerable.Repeat((byte)0xEE, 200)]);
        var corrupt = Raw(receiver);
        corrupt.Hello("p:1");
        corrupt.Frame(Weights(1, 2), FrameHeader.Bytes([1f, 2f]), (_, p) => p[0] ^= 1);
        var large = Raw(receiver);
        large.Hello("p:2");
        large.Frame(Weights(1, 9), FrameHeader.Bytes(new float[9]));
        var truncated = Raw(receiver);
        truncated.Hello("p:3");
        var header = new byte[FrameHeader.Size];
        Weights(1, 8).Write(header, new byte[32]);
        truncated.Raw([.. header, 1, 2, 3]);
        truncated.Close();
        var peers = new[] { Take(inbox.Failures, "failure").Peer, Take(inbox.Failures, "failure").Peer, Take(inbox.Failures, "failure").Peer };
        Assert.Equal(["p:1", "p:2", "p:3"], peers.Order());
        AssertStillAccepts(receiver, inbox);
        Assert.Empty(inbox.Frames);
    }

    // ---- Sending to nobody ---------------------------------------------------------------------

    /// <summary>A loopback endpoint where nothing listens (a port the system gave out and took back).</summary>
    private static string ClosedEndpoint()
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return $"127.0.0.1:{((IPEndPoint)socket.LocalEndPoint!).Port}";
    }

    [Fact]
    public void Send_WhereNothingListens_IsReportedAndTheCallbackStillRuns()
    {
        var (sender, inbox) = Open();
        var endpoint = ClosedEndpoint();
        var sent = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Send(endpoint, Weights(1, 3), (float[])[1f, 2f, 3f], () =>
        {
            Interlocked.Increment(ref sent);
            done.TrySetResult();
        });
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(endpoint, failure.Peer);
        Assert.Contains("cannot send to it", failure.Reason);
        Wait(done.Task, "sent callback");
        Assert.Equal(1, Volatile.Read(ref sent));
        Assert.Empty(inbox.Frames);
    }

    [Theory]
    [InlineData("no-port-here")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:70000")]
    public void Send_ToAMalformedEndpoint_IsReportedAndTheCallbackStillRuns(string endpoint)
    {
        var (sender, inbox) = Open();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Send(endpoint, Weights(1, 1), (float[])[1f], done.SetResult);
        var failure = Take(inbox.Failures, "failure");
        Assert.Equal(endpoint, failure.Peer);
        Assert.Contains("is not host:port", failure.Reason);
        Wait(done.Task, "sent callback");
    }

    [Fact]
    public void Send_AfterDispose_RunsTheCallbackAndReportsNothing()
    {
        var (sender, inbox) = Open();
        var (receiver, received) = Open();
        sender.Dispose();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Send(receiver.Endpoint, Weights(1, 1), (float[])[1f], done.SetResult);
        Wait(done.Task, "sent callback");
        Assert.Empty(inbox.Failures);
        Assert.Empty(received.Frames);
    }

    [Fact]
    public void Open_PortInUse_ThrowsInvalidInput()
    {
        var (a, _) = Open();
        var port = int.Parse(a.Endpoint[(a.Endpoint.LastIndexOf(':') + 1)..]);
        var inbox = new Inbox();
        var e = Assert.Throws<InvalidInputException>(() => TensorChannel.Open(new ChannelSettings("127.0.0.1", port), inbox, inbox.Warnings.Add));
        Assert.Contains("--data-port", e.Message);
    }
}
