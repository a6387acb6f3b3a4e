using System.Net;
using System.Net.Sockets;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// A way to move tensors between two processes over loopback TCP. The sender writes a 64-byte
/// <see cref="Header"/> and the payload straight from a float[] the application owns; the receiver lands
/// the payload in a <see cref="LandingBuffer"/> and answers every message with an <see cref="Ack"/>.
/// A candidate's links are used from one thread at a time (the session's loop).
/// </summary>
internal abstract class Candidate
{
    /// <summary>The name on the command line (--candidates, --serve).</summary>
    public abstract string Name { get; }

    /// <summary>What the table calls it.</summary>
    public abstract string Label { get; }

    /// <summary>
    /// Copies of the payload in user space, sender / receiver, not counting the one copy into or out of
    /// the kernel's socket buffer that every candidate makes on each side.
    /// </summary>
    public abstract string Copies { get; }

    /// <summary>Binds 127.0.0.1:<paramref name="port"/> (0: a free port).</summary>
    public abstract IListener Listen(int port);

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>.</summary>
    public abstract ISenderLink Connect(int port);

    /// <summary>Every candidate, in the table's order.</summary>
    public static IReadOnlyList<Candidate> All { get; } =
    [
        new BlockingSocketCandidate(),
        new BlockingStreamCandidate(),
        new AsyncSocketCandidate(),
        new PipelinesCandidate(PipelinesCandidate.DefaultBufferSize),
        new PipelinesCandidate(PipelinesCandidate.LargeBufferSize),
        new NetMqCandidate(pooled: false),
        new NetMqCandidate(pooled: true),
    ];

    public static string Names => string.Join(", ", All.Select(c => c.Name));

    public static Candidate? Find(string name) => All.FirstOrDefault(c => c.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>A listening TCP socket on 127.0.0.1, Nagle off on what it accepts.</summary>
    protected static Socket ListenTcp(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            socket.Listen(1);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A TCP connection to 127.0.0.1:<paramref name="port"/>, Nagle off.</summary>
    protected static Socket ConnectTcp(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    protected static Socket Accept(Socket listener)
    {
        var socket = listener.Accept();
        socket.NoDelay = true;
        return socket;
    }
}

/// <summary>The receiver's end before the sender has connected.</summary>
internal interface IListener : IDisposable
{
    /// <summary>The port it listens on.</summary>
    int Port { get; }

    /// <summary>Waits for the sender and returns the connection.</summary>
    IReceiverLink Accept();
}

/// <summary>The sender's end of a connection.</summary>
internal interface ISenderLink : IDisposable
{
    /// <summary>Sends <paramref name="header"/> (<see cref="Header.Size"/> bytes) and then <paramref name="payload"/>.</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload);

    /// <summary>Receives the next ack.</summary>
    ValueTask<Ack> ReceiveAckAsync();
}

/// <summary>The receiver's end of a connection.</summary>
internal interface IReceiverLink : IDisposable
{
    /// <summary>Receives the next message: its header, and its payload landed in <paramref name="destination"/>.</summary>
    ValueTask<Header> ReceiveAsync(LandingBuffer destination);

    /// <summary>Sends an ack.</summary>
    ValueTask SendAckAsync(Ack ack);
}
