using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Backprop.Clustering;
using Backprop.Data;
using Backprop.Networks;
using Backprop.Training;

namespace Backprop.CommandLine;

// Options and value parsers that the coordinator's and the worker's command lines share: both
// sides must read data and address nodes the same way.

/// <summary>Parsers for option values, each naming the option and the bad value in its error.</summary>
public static class Parse
{
    /// <summary>Sets a parser whose error names the option and the value.</summary>
    public static Option<T> WithParser<T>(this Option<T> option, Func<string, (T? Value, string? Error)> parse)
    {
        option.CustomParser = result =>
        {
            if (result.Tokens.Count == 0) return option.DefaultValueFactory is { } factory ? factory(result) : default!;
            var text = result.Tokens[^1].Value;
            var (value, error) = parse(text);
            if (error is null) return value!;
            result.AddError($"{option.Name} '{text}': {error}");
            return default!;
        };
        return option;
    }

    /// <summary>Layer sizes: positive whole numbers separated by commas ("128,64").</summary>
    public static (int[]? Value, string? Error) Sizes(string text) => PositiveList(text, "layer size", "sizes", "128,64");

    /// <summary>Thread counts: positive whole numbers separated by commas ("1,2").</summary>
    public static (int[]? Value, string? Error) ThreadCounts(string text) => PositiveList(text, "thread count", "thread counts", "1,2");

    private static (int[]? Value, string? Error) PositiveList(string text, string what, string whats, string example)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) || values[i] < 1)
                return (null, $"'{parts[i]}' is not a positive {what} (expected {whats} separated by commas, like {example})");
        }
        return (values, null);
    }

    public static (int Value, string? Error) PositiveInt(string text) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? (n, null)
            : (0, "expected a whole number of at least 1");

    public static (double Value, string? Error) PositiveSeconds(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 && double.IsFinite(s)
            ? (s, null)
            : (0, "expected a positive number of seconds");

    public static (Activation Value, string? Error) Activation(string text) =>
        Activations.TryParse(text, out var f) ? (f, null) : (default, "expected logistic, tanh, relu, softmax or identity");

    public static (Cost Value, string? Error) Cost(string text) =>
        Costs.TryParse(text, out var c) ? (c, null) : (default, "expected quadratic or cross-entropy");

    public static (OptimizerKind Value, string? Error) Optimizer(string text) =>
        OptimizerSettings.TryParse(text, out var k) ? (k, null) : (default, "expected sgd, momentum or adam");

    public static (ScalingKind Value, string? Error) Scaling(string text) =>
        FeatureScaling.TryParse(text, out var k) ? (k, null) : (default, "expected none, max, minmax or standard");

    public static (bool? Value, string? Error) Header(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => (null, null),
        "yes" or "true" => (true, null),
        "no" or "false" => (false, null),
        _ => (null, "expected auto, yes or no"),
    };
}

/// <summary>The options that choose data, shared by every command that reads data.</summary>
public sealed class DataOptionSet
{
    public Option<string> Data { get; } = new("--data")
    {
        Description = "Training data: digits (embedded), fashion-mnist, xor, spirals, a CSV file (.csv[.gz]), an IDX images file, or a directory of IDX files",
        DefaultValueFactory = _ => "digits",
        HelpName = "NAME|PATH",
    };
    public Option<string?> TestData { get; } = new("--test-data")
    {
        Description = "Separate test data (file or directory); otherwise the data's own test part, or a split",
        HelpName = "PATH",
    };
    public Option<double> TestFraction { get; } = new Option<double>("--test-fraction")
    {
        Description = "Part of the data held out for testing when it has no test part",
        DefaultValueFactory = _ => 0.2,
    }.WithParser(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && f is > 0 and < 1 ? (f, null) : (0, "expected a number between 0 and 1"));
    public Option<int> LabelColumn { get; } = new("--label-column")
    {
        Description = "CSV column of the label, 0-based; negative counts from the end",
        DefaultValueFactory = _ => -1,
    };
    public Option<bool?> Header { get; } = new Option<bool?>("--header")
    {
        Description = "Whether a CSV file starts with a header line: auto, yes, no",
        DefaultValueFactory = _ => null,
        HelpName = "auto|yes|no",
    }.WithParser(Parse.Header);
    public Option<int> SplitSeed { get; } = new("--split-seed")
    {
        Description = "Seed of the train/test split",
        DefaultValueFactory = _ => 0,
    };
    public Option<int?> Classes { get; } = new Option<int?>("--classes")
    {
        Description = "Number of classes (default: largest training label + 1); a label outside is an error",
    }.WithParser(t => { var (n, e) = Parse.PositiveInt(t); return (n, e); });

    public IEnumerable<Option> All => [Data, TestData, TestFraction, LabelColumn, Header, SplitSeed, Classes];

    public DataOptions Read(ParseResult result) => new(
        result.GetValue(Data)!,
        result.GetValue(TestData),
        result.GetValue(TestFraction),
        new CsvOptions(result.GetValue(LabelColumn), result.GetValue(Header)),
        result.GetValue(SplitSeed),
        result.GetValue(Classes));
}

/// <summary>The options that place a node on the network; each falls back to an environment variable.</summary>
public sealed class NodeOptionSet(int defaultPort)
{
    /// <summary>--host.</summary>
    public Option<string> Host { get; } = new("--host")
    {
        Description = "Address to bind to (0.0.0.0: every interface) [env BACKPROP_HOST]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_HOST") is { Length: > 0 } h ? h : "127.0.0.1",
    };
    /// <summary>--public-host.</summary>
    public Option<string?> PublicHost { get; } = new("--public-host")
    {
        Description = "Address other nodes reach this one at, when it differs from --host (containers, NAT) [env BACKPROP_PUBLIC_HOST]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_PUBLIC_HOST") is { Length: > 0 } h ? h : null,
    };
    /// <summary>--port.</summary>
    public Option<int> Port { get; } = new Option<int>("--port")
    {
        Description = $"TCP port (0: any free port; default {defaultPort}) [env BACKPROP_PORT]",
        DefaultValueFactory = _ => int.TryParse(Environment.GetEnvironmentVariable("BACKPROP_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : defaultPort,
    }.WithParser(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p <= 65535 ? (p, null) : (0, "expected a port number 0-65535"));
    /// <summary>--data-port.</summary>
    public Option<int> DataPort { get; } = new Option<int>("--data-port")
    {
        Description = "TCP port of the tensor channel, which carries weights and gradients between processes (0: any free port; default 0) [env BACKPROP_DATA_PORT]",
        DefaultValueFactory = _ => int.TryParse(Environment.GetEnvironmentVariable("BACKPROP_DATA_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 0,
    }.WithParser(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p <= 65535 ? (p, null) : (0, "expected a port number 0-65535"));
    /// <summary>--max-frame-size.</summary>
    public Option<int?> MaxFrameSize { get; } = new Option<int?>("--max-frame-size")
    {
        Description = "Largest message in bytes (default: derived from the model size on the coordinator, 64 MiB on workers) [env BACKPROP_MAX_FRAME]",
        DefaultValueFactory = _ => int.TryParse(Environment.GetEnvironmentVariable("BACKPROP_MAX_FRAME"), NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : null,
    }.WithParser(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var f) && f >= 32000 ? (f, null) : (null, "expected a number of bytes, at least 32000"));
    /// <summary>--config.</summary>
    public Option<string?> Config { get; } = new("--config")
    {
        Description = "A HOCON file whose settings override everything else (Akka settings included)",
        HelpName = "FILE",
    };

    /// <summary>--tls-cert.</summary>
    public Option<string?> TlsCertificate { get; } = new("--tls-cert")
    {
        Description = "Mutual TLS on both ports: this node's certificate and private key, a PKCS#12 file (deploy/certs.sh makes them); peers must present one from the same CA (default: off) [env BACKPROP_TLS_CERT]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_TLS_CERT") is { Length: > 0 } c ? c : null,
        HelpName = "FILE.pfx",
    };
    /// <summary>--tls-password.</summary>
    public Option<string?> TlsPassword { get; } = new("--tls-password")
    {
        Description = "Password of the --tls-cert file (the environment variable keeps it out of the process list) [env BACKPROP_TLS_PASSWORD]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_TLS_PASSWORD"),
        HelpName = "PASSWORD",
    };
    /// <summary>--tls-ca.</summary>
    public Option<string?> TlsAuthority { get; } = new("--tls-ca")
    {
        Description = "The cluster's CA certificate (PEM) that peers' certificates must chain to (default: the CA certificate inside the --tls-cert file) [env BACKPROP_TLS_CA]",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BACKPROP_TLS_CA") is { Length: > 0 } c ? c : null,
        HelpName = "CA.pem",
    };

    /// <summary>--verbose.</summary>
    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Log cluster membership and every worker event" };

    /// <summary>All of them.</summary>
    public IEnumerable<Option> All => [Host, PublicHost, Port, DataPort, MaxFrameSize, Config, TlsCertificate, TlsPassword, TlsAuthority, Verbose];

    /// <summary>The TLS options only (for --loopback).</summary>
    public IEnumerable<Option> TlsOptions => [TlsCertificate, TlsPassword, TlsAuthority];

    /// <summary>The certificate settings of --tls-cert, --tls-password and --tls-ca; null when TLS is off. Passwords without a certificate are an error.</summary>
    public TlsFiles? ReadTls(ParseResult result)
    {
        var certificate = result.GetValue(TlsCertificate);
        if (certificate is null)
        {
            if (result.GetResult(TlsAuthority) is { Implicit: false }) throw new InvalidInputException("--tls-ca: needs --tls-cert (this node's own certificate) too");
            return null;
        }
        return new TlsFiles(certificate, result.GetValue(TlsPassword), result.GetValue(TlsAuthority));
    }

    /// <summary>The node settings these options describe.</summary>
    public NodeSettings Read(ParseResult result, string role, string? coordinator, int? frameBytes) => new(
        role,
        result.GetValue(Host)!,
        result.GetValue(PublicHost),
        result.GetValue(Port),
        coordinator,
        result.GetValue(MaxFrameSize) ?? frameBytes ?? NodeSettings.DefaultMaximumFrameBytes,
        result.GetValue(Config),
        result.GetValue(Verbose) ? "INFO" : "WARNING",
        result.GetValue(DataPort),
        ReadTls(result));
}
