using System.Net.Sockets;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// Blocking <see cref="Socket.Send(ReadOnlySpan{byte})"/> / <see cref="Socket.Receive(Span{byte})"/> on
/// the session's own thread, straight from and into the float buffer: two send() calls a message
/// (header, payload; the kernel keeps sending until all is gone), recv() until the payload is in.
/// </summary>
internal sealed class BlockingSocketCandidate : Candidate
{
    public override string Name => "socket";
    public override string Label => "Socket, blocking";
    public override string Copies => "0 / 0";

    public override IListener Listen(int port) => new Listener(ListenTcp(port));

    public override ISenderLink Connect(int port) => new Link(ConnectTcp(port));

    private sealed class Listener(Socket socket) : IListener
    {
        public int Port => ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        public IReceiverLink Accept() => new Link(Candidate.Accept(socket));
        public void Dispose() => socket.Dispose();
    }

    private sealed class Link(Socket socket) : ISenderLink, IReceiverLink
    {
        private readonly byte[] _small = new byte[Header.Size];

        public ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload)
        {
            socket.Send(header.Span);
            if (!payload.IsEmpty) socket.Send(payload.Span);
            return ValueTask.CompletedTask;
        }

        public ValueTask<Ack> ReceiveAckAsync()
        {
            ReceiveExactly(_small.AsSpan(0, Ack.Size));
            return ValueTask.FromResult(Ack.Read(_small));
        }

        public ValueTask<Header> ReceiveAsync(LandingBuffer destination)
        {
            ReceiveExactly(_small);
            var header = Header.Read(_small);
            ReceiveExactly(destination.Bytes(header.PayloadBytes).Span);
            return ValueTask.FromResult(header);
        }

        public ValueTask SendAckAsync(Ack ack)
        {
            ack.Write(_small);
            socket.Send(_small.AsSpan(0, Ack.Size));
            return ValueTask.CompletedTask;
        }

        private void ReceiveExactly(Span<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                var n = socket.Receive(buffer);
                if (n == 0) throw new EndOfStreamException("the peer closed the connection");
                buffer = buffer[n..];
            }
        }

        public void Dispose() => socket.Dispose();
    }
}

/// <summary>
/// The same blocking calls through a <see cref="NetworkStream"/> (Write / ReadExactly on spans), the
/// shape an SslStream would wrap.
/// </summary>
internal sealed class BlockingStreamCandidate : Candidate
{
    public override string Name => "stream";
    public override string Label => "NetworkStream, blocking";
    public override string Copies => "0 / 0";

    public override IListener Listen(int port) => new Listener(ListenTcp(port));

    public override ISenderLink Connect(int port) => new Link(new NetworkStream(ConnectTcp(port), ownsSocket: true));

    private sealed class Listener(Socket socket) : IListener
    {
        public int Port => ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        public IReceiverLink Accept() => new Link(new NetworkStream(Candidate.Accept(socket), ownsSocket: true));
        public void Dispose() => socket.Dispose();
    }

    private sealed class Link(Stream stream) : ISenderLink, IReceiverLink
    {
        private readonly byte[] _small = new byte[Header.Size];

        public ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload)
        {
            stream.Write(header.Span);
            if (!payload.IsEmpty) stream.Write(payload.Span);
            return ValueTask.CompletedTask;
        }

        public ValueTask<Ack> ReceiveAckAsync()
        {
            stream.ReadExactly(_small.AsSpan(0, Ack.Size));
            return ValueTask.FromResult(Ack.Read(_small));
        }

        public ValueTask<Header> ReceiveAsync(LandingBuffer destination)
        {
            stream.ReadExactly(_small);
            var header = Header.Read(_small);
            stream.ReadExactly(destination.Bytes(header.PayloadBytes).Span);
            return ValueTask.FromResult(header);
        }

        public ValueTask SendAckAsync(Ack ack)
        {
            ack.Write(_small);
            stream.Write(_small.AsSpan(0, Ack.Size));
            return ValueTask.CompletedTask;
        }

        public void Dispose() => stream.Dispose();
    }
}

/// <summary>
/// The ValueTask <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> /
/// <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/>, which run on a
/// SocketAsyncEventArgs the socket caches per direction (no allocation a call): on Linux the call tries
/// the send()/recv() at once and, when the kernel would block, waits for epoll and goes on on a
/// thread-pool thread. The payload goes straight from and into the float buffer.
/// </summary>
internal sealed class AsyncSocketCandidate : Candidate
{
    public override string Name => "async";
    public override string Label => "Socket, ValueTask async (SAEA)";
    public override string Copies => "0 / 0";

    public override IListener Listen(int port) => new Listener(ListenTcp(port));

    public override ISenderLink Connect(int port) => new Link(ConnectTcp(port));

    private sealed class Listener(Socket socket) : IListener
    {
        public int Port => ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        public IReceiverLink Accept() => new Link(Candidate.Accept(socket));
        public void Dispose() => socket.Dispose();
    }

    private sealed class Link(Socket socket) : ISenderLink, IReceiverLink
    {
        private readonly byte[] _small = new byte[Header.Size];

        public async ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload)
        {
            await SendAllAsync(header).ConfigureAwait(false);
            if (!payload.IsEmpty) await SendAllAsync(payload).ConfigureAwait(false);
        }

        public async ValueTask<Ack> ReceiveAckAsync()
        {
            await ReceiveExactlyAsync(_small.AsMemory(0, Ack.Size)).ConfigureAwait(false);
            return Ack.Read(_small);
        }

        public async ValueTask<Header> ReceiveAsync(LandingBuffer destination)
        {
            await ReceiveExactlyAsync(_small).ConfigureAwait(false);
            var header = Header.Read(_small);
            await ReceiveExactlyAsync(destination.Bytes(header.PayloadBytes)).ConfigureAwait(false);
            return header;
        }

        public async ValueTask SendAckAsync(Ack ack)
        {
            ack.Write(_small);
            await SendAllAsync(_small.AsMemory(0, Ack.Size)).ConfigureAwait(false);
        }

        private async ValueTask SendAllAsync(ReadOnlyMemory<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                var n = await socket.SendAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                buffer = buffer[n..];
            }
        }

        private async ValueTask ReceiveExactlyAsync(Memory<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0) throw new EndOfStreamException("the peer closed the connection");
                buffer = buffer[n..];
            }
        }

        public void Dispose() => socket.Dispose();
    }
}
