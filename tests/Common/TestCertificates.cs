using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Backprop.Clustering;

namespace Backprop.Tests.Common;

/// <summary>
/// Certificates made in memory for the TLS tests, written as .pfx/.pem files in a temporary
/// directory: the cluster's CA and nodes it signed, a second ("rogue") CA with a node of its own,
/// and broken ones (expired, no key). No openssl needed.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public const string Password = "test-password";

    private static readonly Lazy<TestCertificates> Shared = new(() =>
    {
        var certificates = new TestCertificates();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => certificates.Dispose();
        return certificates;
    });

    /// <summary>One set for the whole test run (making keys takes a moment).</summary>
    public static TestCertificates Instance => Shared.Value;

    public TestCertificates()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("backprop-tls-").FullName;
        using var ca = MakeAuthority("backprop test CA");
        using var rogueCa = MakeAuthority("rogue CA");
        AuthorityPem = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(AuthorityPem, ca.ExportCertificatePem());
        Node = WriteNode("node", ca, includeAuthority: true);
        OtherNode = WriteNode("other-node", ca, includeAuthority: true);
        WithoutAuthority = WriteNode("without-ca", ca, includeAuthority: false);
        Rogue = WriteNode("rogue", rogueCa, includeAuthority: true);
        Expired = WriteNode("expired", ca, includeAuthority: true, notAfter: DateTimeOffset.UtcNow.AddDays(-1));
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        using (var leaf = Sign(key, "no-key", ca, DateTimeOffset.UtcNow.AddDays(30)))
        {
            NoKey = Path.Combine(Directory, "no-key.pfx");
            var bundle = new X509Certificate2Collection { X509CertificateLoader.LoadCertificate(leaf.RawData), X509CertificateLoader.LoadCertificate(ca.RawData) };
            File.WriteAllBytes(NoKey, bundle.Export(X509ContentType.Pkcs12, Password)!);
        }
    }

    public string Directory { get; }

    /// <summary>The cluster CA's certificate in PEM.</summary>
    public string AuthorityPem { get; }

    /// <summary>A node of the cluster's CA; the .pfx holds the CA too.</summary>
    public string Node { get; }

    /// <summary>Another node of the cluster's CA.</summary>
    public string OtherNode { get; }

    /// <summary>A node of the cluster's CA whose .pfx does not hold the CA (needs --tls-ca).</summary>
    public string WithoutAuthority { get; }

    /// <summary>A node of another CA (its .pfx holds that CA).</summary>
    public string Rogue { get; }

    /// <summary>A node of the cluster's CA that expired yesterday.</summary>
    public string Expired { get; }

    /// <summary>A .pfx with the node's certificate but not its key.</summary>
    public string NoKey { get; }

    public static TlsFiles Files(string pfx, string? authority = null) => new(pfx, Password, authority);

    public static NodeTls Load(string pfx, string? authority = null) => NodeTls.Load(Files(pfx, authority));

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    private static X509Certificate2 MakeAuthority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, O=backprop tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddYears(1));
    }

    private static X509Certificate2 Sign(ECDsa key, string name, X509Certificate2 authority, DateTimeOffset notAfter)
    {
        var request = new CertificateRequest($"CN={name}, O=backprop tests", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        return request.Create(authority, DateTimeOffset.UtcNow.AddDays(-2), notAfter, serial);
    }

    private string WriteNode(string name, X509Certificate2 authority, bool includeAuthority, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var signed = Sign(key, name, authority, notAfter ?? DateTimeOffset.UtcNow.AddDays(30));
        using var withKey = signed.CopyWithPrivateKey(key);
        var bundle = new X509Certificate2Collection { withKey };
        if (includeAuthority) bundle.Add(X509CertificateLoader.LoadCertificate(authority.RawData));
        var path = Path.Combine(Directory, name + ".pfx");
        File.WriteAllBytes(path, bundle.Export(X509ContentType.Pkcs12, Password)!);
        return path;
    }
}
