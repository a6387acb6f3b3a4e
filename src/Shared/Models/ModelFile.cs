using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Backprop.Data;
using Backprop.Networks;
using Architecture = Backprop.Networks.Architecture;

namespace Backprop.Models;

/// <summary>A trained network with what is needed to use it: the feature scaling and metadata.</summary>
/// <param name="Architecture">The network shape.</param>
/// <param name="Parameters">Weights and biases in the flat layout of <see cref="Networks.Architecture"/>.</param>
/// <param name="Scaling">The feature scaling fitted on the training data.</param>
/// <param name="Metadata">Free-form key/value pairs (data set, hash, settings, results).</param>
public sealed record Model(Architecture Architecture, float[] Parameters, FeatureScaling Scaling, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// The model file format, version 1 (docs/model-format.md has it byte by byte): the magic "BPMD",
/// a version, tagged sections (ARCH, SCAL, PARM, META; unknown tags are skipped), and a SHA-256
/// of everything before it. Little-endian throughout.
/// </summary>
public static class ModelFile
{
    /// <summary>The first four bytes of every model file.</summary>
    public static ReadOnlySpan<byte> Magic => "BPMD"u8;
    /// <summary>The version this code writes and reads.</summary>
    public const ushort Version = 1;
    private const int HeaderSize = 12, SectionHeaderSize = 12, ChecksumSize = 32;

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically (a temporary file, then a rename).</summary>
    public static void Save(Model model, string path) => Write(ToBytes(model), path);

    /// <summary>
    /// Throws an <see cref="InvalidInputException"/> naming <paramref name="path"/> unless a model can be
    /// written there (its directory exists and takes a new file): to check before a long training run
    /// rather than lose the run at its end. Leaves nothing behind.
    /// </summary>
    public static void CheckWritable(string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException($"{path}: is a directory; expected a file name for the model");
        Write([], path, keep: false);
    }

    /// <summary>Writes through a temporary file beside <paramref name="path"/>, then moves it into place (or deletes it).</summary>
    private static void Write(byte[] bytes, string path, bool keep = true)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }
            if (keep) File.Move(temporary, path, overwrite: true);
            else File.Delete(temporary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // File.Exists is false, without throwing, when the directory itself is missing.
            if (File.Exists(temporary)) File.Delete(temporary);
            throw new InvalidInputException($"{path}: cannot write the model ({e.Message})", e);
        }
    }

    /// <summary>Reads a model; every defect is an <see cref="InvalidInputException"/> naming the file.</summary>
    public static Model Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidInputException($"{path}: model file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{path}: cannot read the model ({e.Message})", e);
        }
        return FromBytes(bytes, path);
    }

    /// <summary>The file's bytes for <paramref name="model"/>.</summary>
    public static byte[] ToBytes(Model model)
    {
        var architecture = model.Architecture;
        var sections = new List<(string Tag, byte[] Payload)>();

        using (var arch = new MemoryStream())
        using (var w = new BinaryWriter(arch))
        {
            w.Write((uint)architecture.Sizes.Count);
            foreach (var n in architecture.Sizes) w.Write((uint)n);
            w.Write((byte)architecture.Hidden);
            w.Write((byte)architecture.Output);
            w.Write((byte)architecture.Cost);
            w.Write((byte)0);
            w.Flush();
            sections.Add(("ARCH", arch.ToArray()));
        }

        using (var scal = new MemoryStream())
        using (var w = new BinaryWriter(scal))
        {
            w.Write((byte)model.Scaling.Kind);
            w.Write((byte)0);
            w.Write((ushort)0);
            w.Write((uint)model.Scaling.FeatureCount);
            w.Write(MemoryMarshal.AsBytes(model.Scaling.Shift.AsSpan()));
            w.Write(MemoryMarshal.AsBytes(model.Scaling.Scale.AsSpan()));
            w.Flush();
            sections.Add(("SCAL", scal.ToArray()));
        }

        var parm = new byte[4 + model.Parameters.Length * 4];
        BinaryPrimitives.WriteUInt32LittleEndian(parm, (uint)model.Parameters.Length);
        MemoryMarshal.AsBytes(model.Parameters.AsSpan()).CopyTo(parm.AsSpan(4));
        sections.Add(("PARM", parm));

        var meta = new StringBuilder();
        foreach (var (key, value) in model.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key.Contains('=') || key.Contains('\n') || value.Contains('\n')) throw new ArgumentException($"metadata '{key}' may not contain '=' in its key or a line break");
            meta.Append(key).Append('=').Append(value).Append('\n');
        }
        sections.Add(("META", Encoding.UTF8.GetBytes(meta.ToString())));

        var length = HeaderSize + sections.Sum(s => SectionHeaderSize + s.Payload.Length) + ChecksumSize;
        var bytes = new byte[length];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)sections.Count);
        var offset = HeaderSize;
        foreach (var (tag, payload) in sections)
        {
            Encoding.ASCII.GetBytes(tag).CopyTo(span[offset..]);
            BinaryPrimitives.WriteUInt64LittleEndian(span[(offset + 4)..], (ulong)payload.Length);
            payload.CopyTo(span[(offset + SectionHeaderSize)..]);
            offset += SectionHeaderSize + payload.Length;
        }
        SHA256.HashData(span[..offset], span[offset..]);
        return bytes;
    }

    /// <summary>Parses the bytes of a model file; <paramref name="name"/> names it in errors.</summary>
    public static Model FromBytes(ReadOnlySpan<byte> bytes, string name)
    {
        if (bytes.Length < HeaderSize + ChecksumSize || !bytes[..4].SequenceEqual(Magic))
            throw new InvalidInputException($"{name}: not a model file (it does not start with \"BPMD\" or is shorter than {HeaderSize + ChecksumSize} bytes)");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != Version)
            throw new InvalidInputException($"{name}: model format version {version} is not supported (this program reads version {Version})");
        var body = bytes[..^ChecksumSize];
        Span<byte> checksum = stackalloc byte[ChecksumSize];
        SHA256.HashData(body, checksum);
        if (!checksum.SequenceEqual(bytes[^ChecksumSize..]))
            throw new InvalidInputException($"{name}: the model file is corrupt or truncated (SHA-256 checksum mismatch)");

        var sectionCount = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        var sections = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var offset = HeaderSize;
        for (var k = 0; k < sectionCount; k++)
        {
            if (body.Length - offset < SectionHeaderSize) throw new InvalidInputException($"{name}: section {k + 1} of {sectionCount} is missing");
            var tag = Encoding.ASCII.GetString(body.Slice(offset, 4));
            var length = BinaryPrimitives.ReadUInt64LittleEndian(body[(offset + 4)..]);
            offset += SectionHeaderSize;
            if (length > (ulong)(body.Length - offset)) throw new InvalidInputException($"{name}: section {tag} claims {length} bytes, only {body.Length - offset} remain");
            if (!sections.TryAdd(tag, body.Slice(offset, (int)length).ToArray())) throw new InvalidInputException($"{name}: section {tag} appears twice");
            offset += (int)length;
        }
        if (offset != body.Length) throw new InvalidInputException($"{name}: {body.Length - offset} unexpected bytes after the last section");

        var architecture = ReadArchitecture(Required(sections, "ARCH", name), name);
        var parameters = ReadParameters(Required(sections, "PARM", name), architecture, name);
        var scaling = sections.TryGetValue("SCAL", out var scal)
            ? ReadScaling(scal, architecture, name)
            : FeatureScaling.Identity(architecture.InputSize);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (sections.TryGetValue("META", out var meta))
        {
            foreach (var line in Encoding.UTF8.GetString(meta).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) throw new InvalidInputException($"{name}: META line '{line}' is not key=value");
                metadata[line[..eq]] = line[(eq + 1)..];
            }
        }
        return new Model(architecture, parameters, scaling, metadata);
    }

    private static byte[] Required(Dictionary<string, byte[]> sections, string tag, string name) =>
        sections.TryGetValue(tag, out var payload) ? payload : throw new InvalidInputException($"{name}: the model has no {tag} section");

    private static Architecture ReadArchitecture(byte[] payload, string name)
    {
        var span = payload.AsSpan();
        if (span.Length < 4) throw new InvalidInputException($"{name}: ARCH section too short");
        var count = BinaryPrimitives.ReadUInt32LittleEndian(span);
        if (count is < 2 or > 1024 || span.Length != 4 + 4 * count + 4) throw new InvalidInputException($"{name}: ARCH section has {span.Length} bytes, which does not fit {count} layer sizes");
        var sizes = new int[count];
        for (var l = 0; l < count; l++)
        {
            var n = BinaryPrimitives.ReadUInt32LittleEndian(span[(4 + 4 * l)..]);
            if (n is 0 or > int.MaxValue) throw new InvalidInputException($"{name}: layer {l} has {n} units");
            sizes[l] = (int)n;
        }
        var tail = span[(4 + 4 * (int)count)..];
        if (!Enum.IsDefined((Activation)tail[0]) || !Enum.IsDefined((Activation)tail[1]) || !Enum.IsDefined((Cost)tail[2]))
            throw new InvalidInputException($"{name}: unknown activation or cost code ({tail[0]}, {tail[1]}, {tail[2]})");
        try
        {
            return new Architecture(sizes, (Activation)tail[0], (Activation)tail[1], (Cost)tail[2]);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"{name}: invalid architecture ({e.Message})", e);
        }
    }

    private static float[] ReadParameters(byte[] payload, Architecture architecture, string name)
    {
        if (payload.Length < 4) throw new InvalidInputException($"{name}: PARM section too short");
        var count = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (count != architecture.ParameterCount || payload.Length != 4 + 4L * count)
            throw new InvalidInputException($"{name}: PARM holds {count} values in {payload.Length} bytes; the architecture {architecture} has {architecture.ParameterCount}");
        var parameters = MemoryMarshal.Cast<byte, float>(payload.AsSpan(4)).ToArray();
        foreach (var p in parameters)
        {
            if (!float.IsFinite(p)) throw new InvalidInputException($"{name}: the parameters contain NaN or infinity");
        }
        return parameters;
    }

    private static FeatureScaling ReadScaling(byte[] payload, Architecture architecture, string name)
    {
        if (payload.Length < 8) throw new InvalidInputException($"{name}: SCAL section too short");
        var kind = (ScalingKind)payload[0];
        var count = BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
        if (!Enum.IsDefined(kind) || count != architecture.InputSize || payload.Length != 8 + 8L * count)
            throw new InvalidInputException($"{name}: SCAL section (kind {payload[0]}, {count} features, {payload.Length} bytes) does not match {architecture.InputSize} inputs");
        var values = MemoryMarshal.Cast<byte, float>(payload.AsSpan(8));
        return new FeatureScaling(kind, values[..(int)count].ToArray(), values[(int)count..].ToArray());
    }
}
