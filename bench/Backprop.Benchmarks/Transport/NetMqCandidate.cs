using System.Buffers;
using System.Numerics;
using NetMQ;
using NetMQ.Sockets;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// NetMQ: a DealerSocket at each end over tcp://127.0.0.1 (DEALER to DEALER carries frames both ways with
/// no routing frame), one frame a message holding the header and the payload. The sender copies the
/// floats into a <see cref="Msg"/> from NetMQ's BufferPool and hands it to NetMQ's I/O thread; the
/// receiver's I/O thread decodes into a Msg from the pool, and the session copies the payload into the
/// float buffer. Frames larger than NetMQ's 8 KiB batch go between the socket and the Msg's own array
/// (its encoder's and decoder's zero-copy path). <paramref name="pooled"/>: every Msg's array from
/// <see cref="ArrayPool{T}.Shared"/> instead of NetMQ's default (a new array for every Msg).
/// </summary>
internal sealed class NetMqCandidate(bool pooled) : Candidate
{
    public override string Name => pooled ? "netmq-pooled" : "netmq";
    public override string Label => pooled ? "NetMQ, ArrayPool buffers" : "NetMQ, default GC buffers";
    public override string Copies => "1 / 1";

    public override IListener Listen(int port)
    {
        UsePool();
        var socket = new DealerSocket();
        try
        {
            socket.Options.Linger = TimeSpan.Zero;
            var bound = port == 0 ? socket.BindRandomPort("tcp://127.0.0.1") : Bind(socket, port);
            return new Listener(socket, bound);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public override ISenderLink Connect(int port)
    {
        UsePool();
        var socket = new DealerSocket();
        try
        {
            socket.Options.Linger = TimeSpan.Zero;
            socket.Connect($"tcp://127.0.0.1:{port}");
            return new Link(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>NetMQ's buffer pool is one for the process: each candidate switches it to its own kind before use.</summary>
    private void UsePool()
    {
        lock (SwitchingPool.Instance)
        {
            if (!SwitchingPool.Instance.Installed)
            {
                BufferPool.SetCustomBufferPool(SwitchingPool.Instance);
                SwitchingPool.Instance.Installed = true;
            }
        }
        SwitchingPool.Instance.Pooled = pooled;
    }

    /// <summary>
    /// NetMQ's buffers: new arrays (NetMQ's own default, <see cref="GCBufferPool"/>), or arrays rented from
    /// <see cref="ArrayPool{T}.Shared"/>. Either kind may come back while the other is in use (a message still
    /// in flight when the candidate changes), so a return takes back only what the shared pool can hold
    /// and leaves the rest to the GC.
    /// </summary>
    private sealed class SwitchingPool : IBufferPool
    {
        public static readonly SwitchingPool Instance = new();
        private volatile bool _pooled;

        public bool Installed { get; set; }

        public bool Pooled
        {
            get => _pooled;
            set => _pooled = value;
        }

        public byte[] Take(int size) => _pooled ? ArrayPool<byte>.Shared.Rent(size) : new byte[size];

        public void Return(byte[] buffer)
        {
            if (_pooled && buffer.Length >= 16 && BitOperations.IsPow2(buffer.Length)) ArrayPool<byte>.Shared.Return(buffer);
        }

        public void Dispose()
        {
        }
    }

    private static int Bind(DealerSocket socket, int port)
    {
        socket.Bind($"tcp://127.0.0.1:{port}");
        return port;
    }

    private sealed class Listener(DealerSocket socket, int port) : IListener
    {
        private DealerSocket? _socket = socket;

        public int Port => port;

        public IReceiverLink Accept()
        {
            var link = new Link(_socket ?? throw new InvalidOperationException("a NetMQ listener serves one link"));
            _socket = null;
            return link;
        }

        public void Dispose() => _socket?.Dispose();
    }

    private sealed class Link(DealerSocket socket) : ISenderLink, IReceiverLink
    {
        public ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload)
        {
            var msg = default(Msg);
            msg.InitPool(header.Length + payload.Length);
            var frame = msg.Slice();
            header.Span.CopyTo(frame);
            payload.Span.CopyTo(frame[header.Length..]);
            socket.Send(ref msg, more: false);
            msg.Close();
            return ValueTask.CompletedTask;
        }

        public ValueTask<Ack> ReceiveAckAsync()
        {
            var msg = default(Msg);
            msg.InitEmpty();
            try
            {
                socket.Receive(ref msg);
                if (msg.Size != Ack.Size) throw new InvalidDataException($"an ack of {msg.Size} bytes");
                return ValueTask.FromResult(Ack.Read(msg.Slice()));
            }
            finally
            {
                msg.Close();
            }
        }

        public ValueTask<Header> ReceiveAsync(LandingBuffer destination)
        {
            var msg = default(Msg);
            msg.InitEmpty();
            try
            {
                socket.Receive(ref msg);
                var frame = msg.Slice();
                var header = Header.Read(frame);
                if (frame.Length != Header.Size + header.PayloadBytes) throw new InvalidDataException($"a frame of {frame.Length} bytes for a {header.PayloadBytes}-byte payload");
                frame[Header.Size..].CopyTo(destination.Bytes(header.PayloadBytes).Span);
                return ValueTask.FromResult(header);
            }
            finally
            {
                msg.Close();
            }
        }

        public ValueTask SendAckAsync(Ack ack)
        {
            var msg = default(Msg);
            msg.InitPool(Ack.Size);
            ack.Write(msg.Slice());
            socket.Send(ref msg, more: false);
            msg.Close();
            return ValueTask.CompletedTask;
        }

        public void Dispose() => socket.Dispose();
    }
}
