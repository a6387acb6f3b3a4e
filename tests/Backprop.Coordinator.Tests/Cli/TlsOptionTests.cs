using System.Diagnostics;
using Backprop.Clustering;
using Backprop.Tests.Common;

namespace Backprop.Coordinator.Tests.Cli;

/// <summary>The TLS options on the command line, and deploy/certs.sh.</summary>
public sealed class TlsOptionTests
{
    private static TestCertificates Certificates => TestCertificates.Instance;

    [Fact]
    public void LoopbackWithTls_SavesTheModelFileOfAPlaintextRun()
    {
        var plain = Path.GetTempFileName();
        var tls = Path.GetTempFileName();
        try
        {
            var a = CommandLineRunner.Run("train", "--loopback", "--epochs", "2", "--quiet", "--save", plain);
            var b = CommandLineRunner.Run("train", "--loopback", "--epochs", "2", "--quiet", "--save", tls,
                "--tls-cert", Certificates.WithoutAuthority, "--tls-ca", Certificates.AuthorityPem, "--tls-password", TestCertificates.Password);
            Assert.True(a.ExitCode == 0, a.Error);
            Assert.True(b.ExitCode == 0, b.Error);
            Assert.Equal(File.ReadAllBytes(plain), File.ReadAllBytes(tls));
        }
        finally
        {
            File.Delete(plain);
            File.Delete(tls);
        }
    }

    [Theory]
    [InlineData("missing", "file not found")]
    [InlineData("wrong-password", "password")]
    [InlineData("no-key", "holds no private key")]
    [InlineData("expired", "expired on")]
    [InlineData("in-process", "TLS applies with --cluster or --loopback")]
    public void BadCertificates_StopWithOneLineAndExitCode2(string what, string expected)
    {
        string[] tls = what switch
        {
            "missing" => ["--loopback", "--tls-cert", "/nonexistent.pfx"],
            "wrong-password" => ["--loopback", "--tls-cert", Certificates.Node, "--tls-password", "wrong"],
            "no-key" => ["--loopback", "--tls-cert", Certificates.NoKey, "--tls-password", TestCertificates.Password],
            "expired" => ["--loopback", "--tls-cert", Certificates.Expired, "--tls-password", TestCertificates.Password],
            _ => ["--tls-cert", Certificates.Node, "--tls-password", TestCertificates.Password],
        };
        var (code, _, error) = CommandLineRunner.Run(["train", "--epochs", "1", "--quiet", .. tls]);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "deploy", "certs.sh"))) return dir.FullName;
        throw new InvalidOperationException("deploy/certs.sh not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Output, string Error) Script(params string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(RepositoryRoot(), "deploy", "certs.sh"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment.Remove("BACKPROP_TLS_PASSWORD");
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error);
    }

    private static bool HasOpenssl() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(p => File.Exists(Path.Combine(p, "openssl")));

    [Fact]
    public void CertsScript_MakesACaAndNodeCertificatesThatTrustEachOther_AndRefusesToOverwrite()
    {
        if (!HasOpenssl()) return; // nothing to test without openssl (.ci/run installs it)
        var dir = Directory.CreateTempSubdirectory("backprop-certs-").FullName;
        try
        {
            var made = Script("--dir", dir, "--password", "pw", "node0=node0,127.0.0.1", "node1");
            Assert.True(made.Code == 0, made.Error);
            Assert.True(File.Exists(Path.Combine(dir, "ca.pem")));
            Assert.True(File.Exists(Path.Combine(dir, "ca.key")));
            var node0 = NodeTls.Load(new TlsFiles(Path.Combine(dir, "node0.pfx"), "pw"));
            var node1 = NodeTls.Load(new TlsFiles(Path.Combine(dir, "node1.pfx"), "pw", Path.Combine(dir, "ca.pem")));
            Assert.Null(node0.Check(node1.Certificate));
            Assert.Null(node1.Check(node0.Certificate));
            Assert.Contains("not issued by the cluster's CA", node0.Check(TestCertificates.Load(Certificates.Rogue).Certificate));
            var sans = node0.Certificate.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains("node0", sans.EnumerateDnsNames());
            Assert.Contains(System.Net.IPAddress.Loopback, sans.EnumerateIPAddresses());

            var again = Script("--dir", dir, "--password", "pw", "node1");
            Assert.Equal(2, again.Code);
            Assert.Contains("not overwriting it without --force", again.Error);
            var forced = Script("--dir", dir, "--password", "pw", "--force", "node1", "node2");
            Assert.True(forced.Code == 0, forced.Error);
            Assert.Contains("using the CA", forced.Output);
            Assert.Null(node0.Check(NodeTls.Load(new TlsFiles(Path.Combine(dir, "node2.pfx"), "pw")).Certificate));

            var help = Script("--help");
            Assert.Equal(0, help.Code);
            Assert.Contains("deploy/certs.sh [--dir DIR]", help.Output);
            Assert.Equal(2, Script("--dir", dir).Code); // no node named
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
