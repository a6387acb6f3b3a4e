using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;
using Backprop.Protocol;

namespace Backprop.Channel;

/// <summary>Where a node's tensor channel listens.</summary>
/// <param name="Host">The address to bind to (0.0.0.0 for every interface).</param>
/// <param name="Port">The TCP port (0: any free port).</param>
/// <param name="PublicHost">The address other nodes use to reach this one (defaults to <paramref name="Host"/>).</param>
public sealed record ChannelSettings(string Host = "127.0.0.1", int Port = 0, string? PublicHost = null)
{
    /// <summary>Mutual TLS on every connection, in and out (null: plain TCP).</summary>
    public Clustering.NodeTls? Tls { get; init; }
}

/// <summary>
/// Makes a connection's stream from the socket's: <paramref name="outbound"/> is true on the side that
/// connected (to <paramref name="peer"/>, host:port) and false on the side that accepted (from
/// <paramref name="peer"/>, "tcp:" + address). Throws (IOException, AuthenticationException) to refuse it.
/// </summary>
public delegate Stream StreamWrapper(Stream stream, bool outbound, string peer);

/// <summary>What the channel tells its owner (an actor, which turns each call into a message to itself).</summary>
public interface ITensorInbox
{
    /// <summary>
    /// A frame from <paramref name="peer"/> (the endpoint its Hello named) whose checksum matched.
    /// <paramref name="payload"/> comes from <see cref="TensorChannel.Pool"/> and holds exactly
    /// <see cref="FrameHeader.Count"/> values; the inbox owns it now and gives it back when done.
    /// </summary>
    void Received(string peer, FrameHeader header, float[] payload);

    /// <summary>
    /// The connection to or from <paramref name="peer"/> dropped, could not be made, or carried a bad
    /// frame (<paramref name="reason"/> says which); the connection is closed. A peer that never
    /// said Hello is named by its address, "tcp:" + address.
    /// </summary>
    void Failed(string peer, string reason);
}

/// <summary>
/// The data plane: direct TCP connections between nodes that carry tensors as frames (an 88-byte
/// <see cref="FrameHeader"/>, then raw little-endian float32), beside Akka, which keeps every
/// decision. A node listens on one port; it connects to a peer the first time it sends to it and
/// keeps the connection. Each connection is read by a thread of its own, straight from the socket
/// into a pooled array (one copy: the kernel's), and written by a thread of its own straight from
/// the sender's array, so that no actor ever waits for the network.
/// </summary>
/// <remarks>
/// Connections are streams, and the framing knows nothing of sockets: TLS (an SslStream with mutual
/// authentication, <see cref="ChannelSettings.Tls"/>) wraps a connection through <see cref="WrapStream"/>
/// without changing a byte of the framing. A connection whose handshake fails is closed and logged;
/// on the sending side it is reported like any connection that cannot be made. A frame that is not well formed, too large for the run, or whose checksum does
/// not match closes its connection and is reported; it never reaches an actor.
/// </remarks>
public sealed class TensorChannel : IDisposable
{
    private const int MaximumHelloBytes = 512;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly ITensorInbox _inbox;
    private readonly Action<string> _warn;
    private readonly ConcurrentDictionary<string, Outbound> _outbound = new();
    private readonly ConcurrentDictionary<Socket, byte> _inbound = new();
    private volatile bool _disposed;
    private int _maximumValues;

    private TensorChannel(Socket listener, string endpoint, ITensorInbox inbox, Action<string> warn, StreamWrapper? wrap)
    {
        _listener = listener;
        Endpoint = endpoint;
        _inbox = inbox;
        _warn = warn;
        WrapStream = wrap ?? ((stream, _, _) => stream);
        new Thread(AcceptLoop) { IsBackground = true, Name = $"tensor-accept {endpoint}" }.Start();
    }

    /// <summary>
    /// Listens as <paramref name="settings"/> say, with mutual TLS on every connection when they have
    /// <see cref="ChannelSettings.Tls"/>. Frames go to <paramref name="inbox"/>; problems a peer caused
    /// (a bad frame, a dropped connection, a failed TLS handshake) also go to <paramref name="warn"/>.
    /// </summary>
    /// <exception cref="InvalidInputException">The address cannot be listened on.</exception>
    public static TensorChannel Open(ChannelSettings settings, ITensorInbox inbox, Action<string> warn)
    {
        var address = settings.Host is "0.0.0.0" or "*" ? IPAddress.Any : ResolveOne(settings.Host);
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(address, settings.Port));
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidInputException($"the tensor channel cannot listen on {settings.Host}:{settings.Port} ({e.Message}); choose another --data-port", e);
        }
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        return new TensorChannel(listener, $"{settings.PublicHost ?? settings.Host}:{port}", inbox, warn, settings.Tls is { } tls ? tls.Wrap : null);
    }

    /// <summary>host:port, as other nodes reach this one.</summary>
    public string Endpoint { get; }

    /// <summary>The arrays received payloads land in.</summary>
    public FloatArrayPool Pool { get; } = new();

    /// <summary>The largest payload accepted, in values (0: none but Hello); set from the run's model.</summary>
    public int MaximumValues
    {
        get => Volatile.Read(ref _maximumValues);
        set => Volatile.Write(ref _maximumValues, value);
    }

    /// <summary>Makes a connection's stream: an authenticated SslStream around it with TLS, otherwise the stream itself.</summary>
    public StreamWrapper WrapStream { get; }

    /// <summary>
    /// Sends a frame of <paramref name="header"/> and the first <see cref="FrameHeader.Count"/> values of
    /// <paramref name="payload"/> to <paramref name="endpoint"/>, connecting first if need be. Returns
    /// at once; the values must not change until <paramref name="sent"/> runs (on the connection's
    /// thread, once the bytes are written or the attempt has failed).
    /// </summary>
    public void Send(string endpoint, FrameHeader header, ReadOnlyMemory<float> payload, Action? sent = null)
    {
        if (header.Count > payload.Length) throw new ArgumentException($"the header announces {header.Count} values, the payload holds {payload.Length}", nameof(payload));
        if (_disposed)
        {
            sent?.Invoke();
            return;
        }
        var outbound = _outbound.GetOrAdd(endpoint, e => new Outbound(this, e));
        if (!outbound.Enqueue(new Pending(header, payload, sent))) sent?.Invoke();
    }

    /// <summary>Sends <paramref name="tensor"/> whole as the payload of <paramref name="header"/>, holding it (if pooled) until it is written.</summary>
    public void Send(string endpoint, FrameHeader header, FloatTensor tensor)
    {
        tensor.Hold();
        Send(endpoint, header with { Count = tensor.Length }, tensor.Array, tensor.Release);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _listener.Dispose();
        foreach (var outbound in _outbound.Values) outbound.Close();
        foreach (var socket in _inbound.Keys) socket.Dispose();
    }

    // ---- Receiving ---------------------------------------------------------------------------

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket socket;
            try
            {
                socket = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            socket.NoDelay = true;
            _inbound[socket] = 0;
            new Thread(() => ReadLoop(socket)) { IsBackground = true, Name = $"tensor-in {Endpoint}" }.Start();
        }
    }

    private void ReadLoop(Socket socket)
    {
        var peer = $"tcp:{socket.RemoteEndPoint}";
        var said = false;
        var headerBytes = new byte[FrameHeader.Size];
        try
        {
            Stream stream;
            try
            {
                stream = WrapStream(new NetworkStream(socket, ownsSocket: true), outbound: false, peer);
            }
            catch (Exception e) when (e is IOException or AuthenticationException or SocketException or ObjectDisposedException)
            {
                if (!_disposed) _warn($"tensor channel {Endpoint}: refusing the connection from {peer}: {e.Message}");
                return;
            }
            using var _ = stream;
            while (!_disposed)
            {
                stream.ReadExactly(headerBytes);
                var header = FrameHeader.TryRead(headerBytes, out var problem);
                if (header is not { } h)
                {
                    Reject(peer, said, problem!);
                    return;
                }
                if (!said)
                {
                    if (h.Kind != FrameKind.Hello || h.Count > MaximumHelloBytes)
                    {
                        Reject(peer, said, h.Kind != FrameKind.Hello ? $"the first frame is {h.Kind}, not Hello" : $"a Hello of {h.Count} bytes");
                        return;
                    }
                    var hello = new byte[h.Count];
                    stream.ReadExactly(hello);
                    if (!FrameHeader.ChecksumMatches(headerBytes, hello))
                    {
                        Reject(peer, said, "the Hello's checksum does not match");
                        return;
                    }
                    peer = Encoding.UTF8.GetString(hello);
                    said = true;
                    continue;
                }
                if (h.Kind == FrameKind.Hello || h.Count > MaximumValues)
                {
                    Reject(peer, said, h.Kind == FrameKind.Hello ? "a second Hello" : $"a {h.Kind} frame of {h.Count:N0} values, more than the run's {MaximumValues:N0}");
                    return;
                }
                var payload = Pool.Rent(h.Count);
                var bytes = MemoryMarshal.AsBytes(payload.AsSpan(0, h.Count));
                stream.ReadExactly(bytes);
                if (!FrameHeader.ChecksumMatches(headerBytes, bytes))
                {
                    Pool.Return(payload);
                    Reject(peer, said, $"a {h.Kind} frame of step {h.Step} whose checksum does not match");
                    return;
                }
                WireMetrics.BytesRead.Add(FrameHeader.Size + bytes.Length);
                _inbox.Received(peer, h, payload);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
        {
            if (_disposed) return;
            if (said) _inbox.Failed(peer, e is EndOfStreamException ? "closed the connection" : $"the connection broke ({Innermost(e).Message})");
            else _warn($"tensor channel {Endpoint}: a connection from {peer} closed before it said who it is");
        }
        finally
        {
            _inbound.TryRemove(socket, out _);
            socket.Dispose();
        }
    }

    private void Reject(string peer, bool known, string problem)
    {
        _warn($"tensor channel {Endpoint}: rejecting the connection from {peer}: {problem}");
        if (known) _inbox.Failed(peer, $"sent a bad frame ({problem})");
    }

    // ---- Sending -----------------------------------------------------------------------------

    private readonly record struct Pending(FrameHeader Header, ReadOnlyMemory<float> Payload, Action? Sent);

    /// <summary>One peer's outgoing connection, written by a thread of its own from a queue.</summary>
    private sealed class Outbound
    {
        private readonly TensorChannel _channel;
        private readonly string _endpoint;
        private readonly BlockingCollection<Pending> _queue = [];
        private readonly byte[] _header = new byte[FrameHeader.Size];
        private Socket? _socket;
        private Stream? _stream;

        public Outbound(TensorChannel channel, string endpoint)
        {
            (_channel, _endpoint) = (channel, endpoint);
            new Thread(WriteLoop) { IsBackground = true, Name = $"tensor-out {endpoint}" }.Start();
        }

        public bool Enqueue(Pending pending)
        {
            try
            {
                _queue.Add(pending);
                return true;
            }
            catch (InvalidOperationException)
            {
                return false; // closed
            }
        }

        public void Close()
        {
            _queue.CompleteAdding();
            _socket?.Dispose();
        }

        private void WriteLoop()
        {
            foreach (var pending in _queue.GetConsumingEnumerable())
            {
                try
                {
                    var stream = _stream ?? Connect();
                    var payload = MemoryMarshal.AsBytes(pending.Payload.Span[..pending.Header.Count]);
                    pending.Header.Write(_header, payload);
                    stream.Write(_header);
                    stream.Write(payload);
                    WireMetrics.BytesWritten.Add(FrameHeader.Size + payload.Length);
                }
                catch (AuthenticationException e)
                {
                    // A peer whose certificate is refused (or that refuses ours) is lost like one that is not there.
                    Disconnect();
                    if (_channel._disposed) continue;
                    _channel._warn($"tensor channel {_channel.Endpoint}: {e.Message}");
                    _channel._inbox.Failed(_endpoint, $"cannot send to it ({e.Message})");
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidInputException)
                {
                    Disconnect();
                    if (!_channel._disposed) _channel._inbox.Failed(_endpoint, $"cannot send to it ({Innermost(e).Message})");
                }
                finally
                {
                    pending.Sent?.Invoke();
                }
            }
            Disconnect();
        }

        private Stream Connect()
        {
            var colon = _endpoint.LastIndexOf(':');
            if (colon < 1 || !int.TryParse(_endpoint.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
                throw new InvalidInputException($"'{_endpoint}' is not host:port");
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = new CancellationTokenSource(ConnectTimeout);
                socket.ConnectAsync(_endpoint[..colon], port, timeout.Token).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException e)
            {
                socket.Dispose();
                throw new IOException($"no connection within {ConnectTimeout.TotalSeconds:0} s", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            _socket = socket;
            _stream = _channel.WrapStream(new NetworkStream(socket, ownsSocket: true), outbound: true, _endpoint);
            var hello = FrameHeader.HelloPayload(_channel.Endpoint);
            new FrameHeader(FrameKind.Hello, Guid.Empty, 0, 0, Count: hello.Length).Write(_header, hello);
            _stream.Write(_header);
            _stream.Write(hello);
            return _stream;
        }

        private void Disconnect()
        {
            _stream?.Dispose();
            _socket?.Dispose();
            (_stream, _socket) = (null, null);
        }
    }

    private static IPAddress ResolveOne(string host)
    {
        if (IPAddress.TryParse(host, out var address)) return address;
        try
        {
            return Dns.GetHostAddresses(host).First();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            throw new InvalidInputException($"the tensor channel cannot listen on {host}: the name does not resolve", e);
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
