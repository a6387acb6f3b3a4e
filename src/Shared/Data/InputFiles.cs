using System.IO.Compression;

namespace Backprop.Data;

/// <summary>Opening input files with clear errors; gzip is recognised by its magic bytes, not its name.</summary>
public static class InputFiles
{
    /// <summary>Opens <paramref name="path"/> for reading, decompressing it if it starts with the gzip magic 1f 8b.</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        var file = Open(path);
        Span<byte> head = stackalloc byte[2];
        var n = file.Read(head);
        file.Position = 0;
        if (n == 2 && head[0] == 0x1f && head[1] == 0x8b) return new GZipStream(file, CompressionMode.Decompress);
        return file;
    }

    /// <summary>Opens <paramref name="path"/> for reading; a missing or unreadable file is an <see cref="InvalidInputException"/>.</summary>
    public static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidInputException($"{path}: file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{path}: cannot be read ({e.Message})", e);
        }
    }
}
