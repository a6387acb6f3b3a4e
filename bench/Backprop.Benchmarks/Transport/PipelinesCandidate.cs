using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Backprop.Benchmarks.Transport;

/// <summary>
/// System.IO.Pipelines over a <see cref="NetworkStream"/>: the receiver reads through
/// <see cref="PipeReader.Create(Stream, StreamPipeReaderOptions)"/> (pooled segments of
/// <c>bufferSize</c> bytes, each filled by one ValueTask read of the stream) and copies the payload out
/// of the segments into the float buffer; the sender writes the header into
/// <see cref="PipeWriter.Create(Stream, StreamPipeWriterOptions)"/>'s buffer and the payload with
/// <see cref="PipeWriter.WriteAsync"/>, which hands it to the stream as it is (after the buffered header).
/// </summary>
internal sealed class PipelinesCandidate(int bufferSize) : Candidate
{
    /// <summary>StreamPipeReaderOptions' default segment size.</summary>
    public const int DefaultBufferSize = 4096;
    public const int LargeBufferSize = 128 * 1024;

    public override string Name => bufferSize == DefaultBufferSize ? "pipelines" : $"pipelines-{bufferSize / 1024}k";
    public override string Label => $"Pipelines, {bufferSize / 1024} KiB segments";
    public override string Copies => "0 / 1";

    public override IListener Listen(int port) => new Listener(ListenTcp(port), bufferSize);

    public override ISenderLink Connect(int port) => new Link(new NetworkStream(ConnectTcp(port), ownsSocket: true), bufferSize);

    private sealed class Listener(Socket socket, int bufferSize) : IListener
    {
        public int Port => ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
        public IReceiverLink Accept() => new Link(new NetworkStream(Candidate.Accept(socket), ownsSocket: true), bufferSize);
        public void Dispose() => socket.Dispose();
    }

    private sealed class Link(NetworkStream stream, int bufferSize) : ISenderLink, IReceiverLink
    {
        private readonly PipeReader _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: bufferSize, minimumReadSize: Math.Min(1024, bufferSize), leaveOpen: true));
        private readonly PipeWriter _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));

        public async ValueTask SendAsync(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> payload)
        {
            header.Span.CopyTo(_writer.GetSpan(Header.Size));
            _writer.Advance(header.Length);
            if (payload.IsEmpty) await _writer.FlushAsync().ConfigureAwait(false);
            else await _writer.WriteAsync(payload).ConfigureAwait(false);
        }

        public async ValueTask<Ack> ReceiveAckAsync()
        {
            var buffer = await ReadAtLeastAsync(Ack.Size).ConfigureAwait(false);
            var ack = Ack.Read(First(buffer, Ack.Size));
            _reader.AdvanceTo(buffer.GetPosition(Ack.Size));
            return ack;
        }

        public async ValueTask<Header> ReceiveAsync(LandingBuffer destination)
        {
            var buffer = await ReadAtLeastAsync(Header.Size).ConfigureAwait(false);
            var header = Header.Read(First(buffer, Header.Size));
            _reader.AdvanceTo(buffer.GetPosition(Header.Size));
            var target = destination.Bytes(header.PayloadBytes);
            while (!target.IsEmpty)
            {
                var read = await _reader.ReadAsync().ConfigureAwait(false);
                var data = read.Buffer;
                if (data.IsEmpty && read.IsCompleted) throw new EndOfStreamException("the peer closed the connection");
                var take = (int)Math.Min(data.Length, target.Length);
                data.Slice(0, take).CopyTo(target.Span);
                target = target[take..];
                _reader.AdvanceTo(data.GetPosition(take));
            }
            return header;
        }

        public async ValueTask SendAckAsync(Ack ack)
        {
            ack.Write(_writer.GetSpan(Ack.Size));
            _writer.Advance(Ack.Size);
            await _writer.FlushAsync().ConfigureAwait(false);
        }

        private async ValueTask<ReadOnlySequence<byte>> ReadAtLeastAsync(int count)
        {
            var read = await _reader.ReadAtLeastAsync(count).ConfigureAwait(false);
            if (read.Buffer.Length < count) throw new EndOfStreamException("the peer closed the connection");
            return read.Buffer;
        }

        /// <summary>The first bytes of a sequence, copied only when they straddle two segments.</summary>
        private static ReadOnlySpan<byte> First(ReadOnlySequence<byte> buffer, int count)
        {
            if (buffer.FirstSpan.Length >= count) return buffer.FirstSpan[..count];
            var copy = new byte[count];
            buffer.Slice(0, count).CopyTo(copy);
            return copy;
        }

        public void Dispose()
        {
            _reader.Complete();
            _writer.Complete();
            stream.Dispose();
        }
    }
}
