using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Backprop.Benchmarks.Steps;

/// <summary>
/// bench/pytorch_bench.py --serve: one python process for the whole run that times PyTorch's steps on
/// request, so its repetitions can sit right beside ours. It is used only when torch computes on a BLAS
/// whose threads the script sets (OpenBLAS, or MKL built in), and every answer must say it ran on the
/// threads asked for: a PyTorch on the reference BLAS, or on every core when one thread was asked for,
/// would give a ratio that means nothing. After a failure every answer is NaN, so no ratio is printed.
/// </summary>
internal sealed class PyTorchPeer : IDisposable
{
    private readonly Process _process;
    private readonly TextWriter _error;
    private readonly string _script;
    private bool _failed;

    private PyTorchPeer(Process process, string script, TextWriter error)
    {
        _process = process;
        _script = script;
        _error = error;
    }

    /// <summary>
    /// Starts the peer with the python named (null: python3, then /usr/bin/python3; "none": no peer),
    /// and says what became of it in one line: the python, torch and its BLAS, or why there is no peer.
    /// </summary>
    public static (PyTorchPeer? Peer, string Fact) Open(string? python, string idxDirectory, int batch, TextWriter error)
    {
        if (python == "none") return (null, "skipped (--python none)");
        var (torch, version) = FindTorch(python);
        if (torch is null) return (null, $"no python with torch found ({python ?? "python3, /usr/bin/python3"}): PyTorch columns skipped");
        var script = FindScript();
        if (script is null) return (null, $"{torch}: torch {version}, but bench/pytorch_bench.py was not found (run from the repository): skipped");

        var start = new ProcessStartInfo(torch)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false,
        };
        foreach (var argument in new[] { script, "--data", idxDirectory, "--batch", batch.ToString(CultureInfo.InvariantCulture), "--serve" })
            start.ArgumentList.Add(argument);
        var peer = new PyTorchPeer(Process.Start(start)!, script, error);
        // The first line describes torch and its BLAS; it arrives once the data is loaded.
        var header = peer.ReadLine();
        string? refusal;
        string blas;
        try
        {
            using var json = header is null ? null : JsonDocument.Parse(header);
            refusal = json is null ? "the script ended before it was ready" : Unfit(json.RootElement);
            blas = json is null ? "" : Blas(json.RootElement);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            (refusal, blas) = ($"its first line is not the expected description: {header}", "");
        }
        if (refusal is null) return (peer, $"{torch}: torch {version} on {blas}; the threads of each of its repetitions are checked");
        peer.Dispose();
        return (null, $"{torch}: torch {version}: {refusal}; no PyTorch columns");
    }

    /// <summary>
    /// Why PyTorch, as the script's first line describes it, cannot be measured against ours, or null
    /// when it can: its products run in MKL (whose threads torch sets) or in the OpenBLAS the script
    /// sets the threads of.
    /// </summary>
    internal static string? Unfit(JsonElement header)
    {
        if (header.TryGetProperty("mkl", out var mkl) && mkl.ValueKind == JsonValueKind.True) return null;
        if (header.TryGetProperty("openblas_is_torch_blas", out var openBlas) && openBlas.ValueKind == JsonValueKind.True) return null;
        var sgemm = header.TryGetProperty("torch_sgemm", out var path) && path.GetString() is { Length: > 0 } p ? p : "a library the script could not find";
        return $"torch's sgemm_ is in {sgemm}, not in MKL or in the OpenBLAS whose threads the script sets " +
            "(its times would be of other threads than asked for, or of the reference BLAS)";
    }

    /// <summary>Why an answer was not timed on <paramref name="threads"/> threads, or null when it was.</summary>
    internal static string? WrongThreads(JsonElement answer, int threads)
    {
        var torchThreads = answer.GetProperty("threads").GetInt32();
        if (torchThreads != threads) return $"torch ran on {torchThreads} threads where {threads} were asked for";
        if (answer.TryGetProperty("blas_threads", out var blas) && blas.ValueKind == JsonValueKind.Number && blas.GetInt32() != threads)
            return $"its OpenBLAS ran on {blas.GetInt32()} threads where {threads} were asked for";
        return null;
    }

    private static string Blas(JsonElement header) =>
        header.TryGetProperty("mkl", out var mkl) && mkl.ValueKind == JsonValueKind.True ? "MKL"
        : header.TryGetProperty("blas", out var blas) && blas.GetString() is { Length: > 0 } config ? config.Trim()
        : "an unknown BLAS";

    /// <summary>PyTorch's samples/s over <paramref name="steps"/> steps of the net, or NaN if the script failed or ran on other threads.</summary>
    public double Rate(string net, int threads, int steps)
    {
        if (_failed) return double.NaN;
        _process.StandardInput.WriteLine(JsonSerializer.Serialize(new { net, threads, steps }));
        _process.StandardInput.Flush();
        var line = ReadLine();
        if (line is null) return double.NaN;
        try
        {
            using var json = JsonDocument.Parse(line);
            if (WrongThreads(json.RootElement, threads) is { } wrong)
            {
                Fail(wrong);
                return double.NaN;
            }
            return json.RootElement.GetProperty("samples_per_second").GetDouble();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            Fail($"unexpected answer {line}");
            return double.NaN;
        }
    }

    private string? ReadLine()
    {
        var line = _process.StandardOutput.ReadLine();
        if (line is null) Fail($"exited (code {(_process.WaitForExit(10_000) ? _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "?")})");
        return line;
    }

    private void Fail(string what)
    {
        if (!_failed) _error.WriteLine($"warning: {_script}: {what}; PyTorch columns left empty from here on");
        _failed = true;
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close(); // the script ends at the end of its input
            if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
    }

    /// <summary>A python that can import torch (the one named, else python3, else /usr/bin/python3) and torch's version.</summary>
    private static (string? Python, string Version) FindTorch(string? python)
    {
        foreach (var candidate in python is null ? ["python3", "/usr/bin/python3"] : new[] { python })
        {
            var version = RunPython(candidate, ["-c", "import torch; print(torch.__version__)"], TimeSpan.FromMinutes(1), out var exitCode);
            if (exitCode == 0) return (candidate, version.Trim());
        }
        return (null, "");
    }

    /// <summary>bench/pytorch_bench.py in the current directory or above it, else above the program.</summary>
    private static string? FindScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var path = Path.Combine(dir.FullName, "bench", "pytorch_bench.py");
                if (File.Exists(path)) return path;
            }
        }
        return null;
    }

    private static string RunPython(string python, IEnumerable<string> arguments, TimeSpan timeout, out int exitCode)
    {
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        try
        {
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                exitCode = -1;
                return "";
            }
            exitCode = process.ExitCode;
            _ = stderr.Result;
            return stdout;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            exitCode = -1; // no such program
            return "";
        }
    }
}
