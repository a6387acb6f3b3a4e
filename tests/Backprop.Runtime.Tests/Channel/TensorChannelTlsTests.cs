using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Backprop.Channel;
using Backprop.Clustering;
using Backprop.Protocol;
using Backprop.Tests.Common;

namespace Backprop.Runtime.Tests.Channel;

/// <summary>The tensor channel with mutual TLS: members talk, strangers (another CA, no certificate, plain TCP) are refused.</summary>
public sealed class TensorChannelTlsTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly Guid Run = Guid.Parse("0f5c2a71-8a43-4d1e-9b7a-5e3f0c2d1b4a");
    private readonly List<IDisposable> _owned = [];
    private static TestCertificates Certificates => TestCertificates.Instance;

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
    }

    private sealed class Inbox : ITensorInbox
    {
        public BlockingCollection<(string Peer, FrameHeader Header, float[] Payload)> Frames { get; } = [];
        public BlockingCollection<(string Peer, string Reason)> Failures { get; } = [];
        public BlockingCollection<string> Warnings { get; } = [];
        public void Received(string peer, FrameHeader header, float[] payload) => Frames.Add((peer, header, payload));
        public void Failed(string peer, string reason) => Failures.Add((peer, reason));
    }

    private (TensorChannel Channel, Inbox Inbox) Open(NodeTls? tls)
    {
        var inbox = new Inbox();
        var channel = TensorChannel.Open(new ChannelSettings { Tls = tls }, inbox, inbox.Warnings.Add);
        channel.MaximumValues = 1 << 16;
        _owned.Add(channel);
        return (channel, inbox);
    }

    private static T Take<T>(BlockingCollection<T> collection, string what)
    {
        Assert.True(collection.TryTake(out var item, Timeout), $"no {what} within {Timeout.TotalSeconds} s");
        return item!;
    }

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue));
        return values;
    }

    private static void AssertSameBits(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]));
    }

    private static FrameHeader Weights(long version, int count) => new(FrameKind.Weights, Run, version, version, Count: count);

    /// <summary>A Hello naming <paramref name="endpoint"/> and a Weights frame of 8 values, as the channel writes them.</summary>
    private static byte[] HelloAndFrame(string endpoint)
    {
        var hello = FrameHeader.HelloPayload(endpoint);
        var header = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: hello.Length).Write(header, hello);
        var values = System.Runtime.InteropServices.MemoryMarshal.AsBytes(Values(8, 1).AsSpan()).ToArray();
        var frameHeader = new byte[FrameHeader.Size];
        Weights(1, 8).Write(frameHeader, values);
        return [.. header, .. hello, .. frameHeader, .. values];
    }

    private static async Task<Socket> ConnectAsync(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint[..colon], int.Parse(endpoint[(colon + 1)..]));
        return socket;
    }

    /// <summary>A hostile TLS client: trusts any server, presents <paramref name="certificate"/> (or none), and tries to send a Hello and a frame.</summary>
    private static async Task HostileTlsClientAsync(string endpoint, X509Certificate2? certificate)
    {
        using var socket = await ConnectAsync(endpoint);
#pragma warning disable CA5359 // the hostile client trusts any server on purpose
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false), false, (_, _, _, _) => true);
#pragma warning restore CA5359
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
            });
            await ssl.WriteAsync(HelloAndFrame("hostile:1"));
            await ssl.FlushAsync();
            // The server closes the connection; reading returns 0 or throws.
            _ = await ssl.ReadAsync(new byte[1]);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
        }
    }

    [Fact]
    public void Members_SendBothWays_WithTheirBits_AndTheirEndpoints()
    {
        var (a, aInbox) = Open(TestCertificates.Load(Certificates.Node));
        var (b, bInbox) = Open(TestCertificates.Load(Certificates.OtherNode));
        var toB = Values(1000, 1);
        var toA = Values(333, 2);
        a.Send(b.Endpoint, Weights(7, toB.Length), toB);
        b.Send(a.Endpoint, Weights(8, toA.Length), toA);
        var atB = Take(bInbox.Frames, "frame at b");
        var atA = Take(aInbox.Frames, "frame at a");
        Assert.Equal((a.Endpoint, 7L), (atB.Peer, atB.Header.Version));
        Assert.Equal((b.Endpoint, 8L), (atA.Peer, atA.Header.Version));
        AssertSameBits(toB, atB.Payload);
        AssertSameBits(toA, atA.Payload);
        Assert.Empty(aInbox.Failures);
        Assert.Empty(bInbox.Failures);
        Assert.Empty(aInbox.Warnings);
        Assert.Empty(bInbox.Warnings);
    }

    [Fact]
    public void PfxWithoutTheCa_TrustsTheCaGivenApart()
    {
        var (a, _) = Open(TestCertificates.Load(Certificates.WithoutAuthority, Certificates.AuthorityPem));
        var (b, bInbox) = Open(TestCertificates.Load(Certificates.Node));
        var values = Values(10, 3);
        a.Send(b.Endpoint, Weights(1, values.Length), values);
        AssertSameBits(values, Take(bInbox.Frames, "frame").Payload);
    }

    [Fact]
    public async Task ClientWithACertificateOfAnotherCa_IsRefused_AndNothingArrives()
    {
        var (server, inbox) = Open(TestCertificates.Load(Certificates.Node));
        using var rogue = X509CertificateLoader.LoadPkcs12FromFile(Certificates.Rogue, TestCertificates.Password);
        await HostileTlsClientAsync(server.Endpoint, rogue);
        var warning = Take(inbox.Warnings, "warning");
        Assert.Contains("refusing the connection from tcp:", warning);
        Assert.Contains("CN=rogue", warning);
        Assert.Contains("not issued by the cluster's CA", warning);
        Assert.Empty(inbox.Frames);
        Assert.Empty(inbox.Failures); // a stranger is no peer of the run
    }

    [Fact]
    public async Task ClientWithoutACertificate_IsRefused_AndNothingArrives()
    {
        var (server, inbox) = Open(TestCertificates.Load(Certificates.Node));
        await HostileTlsClientAsync(server.Endpoint, certificate: null);
        var warning = Take(inbox.Warnings, "warning");
        Assert.Contains("it presented no certificate", warning);
        Assert.Empty(inbox.Frames);
    }

    [Fact]
    public async Task PlainTcpClient_IsRefused_AndNothingArrives()
    {
        var (server, inbox) = Open(TestCertificates.Load(Certificates.Node));
        using (var socket = await ConnectAsync(server.Endpoint))
        {
            await socket.SendAsync(HelloAndFrame("plain:1"));
            try
            {
                while (await socket.ReceiveAsync(new byte[256]) > 0) { } // until the server hangs up
            }
            catch (SocketException)
            {
            }
        }
        Assert.Contains("refusing the connection from tcp:", Take(inbox.Warnings, "warning"));
        Assert.Empty(inbox.Frames);
    }

    [Fact]
    public void ServerWithACertificateOfAnotherCa_IsReportedAsALostLink_AndGetsNothing()
    {
        var (rogue, rogueInbox) = Open(TestCertificates.Load(Certificates.Rogue));
        var (sender, inbox) = Open(TestCertificates.Load(Certificates.Node));
        var values = Values(10, 4);
        var sent = new ManualResetEventSlim();
        sender.Send(rogue.Endpoint, Weights(1, values.Length), values, sent.Set);
        var failure = Take(inbox.Failures, "link failure");
        Assert.Equal(rogue.Endpoint, failure.Peer);
        Assert.Contains("not issued by the cluster's CA", failure.Reason);
        Assert.Contains(inbox.Warnings, w => w.Contains("TLS handshake with " + rogue.Endpoint));
        Assert.True(sent.Wait(Timeout), "the sent callback did not run");
        Assert.Empty(rogueInbox.Frames);
    }

    [Fact]
    public void PlainServer_IsReportedAsALostLink()
    {
        var (plain, plainInbox) = Open(tls: null);
        var (sender, inbox) = Open(TestCertificates.Load(Certificates.Node));
        var values = Values(10, 5);
        sender.Send(plain.Endpoint, Weights(1, values.Length), values);
        var failure = Take(inbox.Failures, "link failure");
        Assert.Equal(plain.Endpoint, failure.Peer);
        Assert.Contains("TLS handshake", failure.Reason);
        Assert.Empty(plainInbox.Frames);
    }
}
