using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace Backprop.Clustering;

/// <summary>
/// Where a node's certificate is: a PKCS#12 (.pfx) file with the node's certificate and private key,
/// its password, and the cluster's CA certificate(s) in PEM. Without <paramref name="Authority"/> the
/// self-signed CA certificates inside the PFX are the ones trusted (deploy/certs.sh puts the CA there).
/// </summary>
/// <param name="Certificate">The PFX file (--tls-cert, BACKPROP_TLS_CERT, backprop.tls.certificate).</param>
/// <param name="Password">Its password (--tls-password, BACKPROP_TLS_PASSWORD, backprop.tls.password); null or empty for none.</param>
/// <param name="Authority">A PEM file of the CA certificate(s) peers must chain to (--tls-ca, BACKPROP_TLS_CA, backprop.tls.ca).</param>
public sealed record TlsFiles(string Certificate, string? Password = null, string? Authority = null);

/// <summary>
/// A node's mutual TLS: the certificate it presents and the cluster's CA, which every peer's
/// certificate must chain to. The same object secures Akka.Remote (through a
/// <see cref="DotNettySslSetup"/> with a validator of our own, because Akka's own validation trusts
/// the system's CA store and nothing else) and the tensor channel (an <see cref="SslStream"/>).
/// Host names are not checked: a peer is a member because its certificate comes from the cluster's
/// CA, whatever address it connects from.
/// </summary>
public sealed class NodeTls
{
    /// <summary>The HOCON path of the settings (certificate, password, ca).</summary>
    public const string ConfigPath = "backprop.tls";

    /// <summary>TLS 1.2 and 1.3 only, on the tensor channel.</summary>
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>How long a tensor-channel handshake may take before the connection is closed.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1"), ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly SslStreamCertificateContext _context;

    private NodeTls(X509Certificate2 certificate, X509Certificate2Collection authorities, X509Certificate2Collection intermediates, string source)
    {
        Certificate = certificate;
        Authorities = authorities;
        Intermediates = intermediates;
        Source = source;
        _context = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
    }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificates a peer's certificate must chain to.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>Intermediate CA certificates found beside the node's certificate (sent along with it).</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>Where the certificate came from, for messages.</summary>
    public string Source { get; }

    /// <summary>The settings under <see cref="ConfigPath"/> in <paramref name="config"/>, loaded; null when no certificate is set (TLS off).</summary>
    /// <exception cref="InvalidInputException">A file is missing or unreadable, the password is wrong, the certificate has no key, has expired, or is not from the CA.</exception>
    public static NodeTls? FromConfig(Config config)
    {
        var path = config.GetString($"{ConfigPath}.certificate", null);
        if (string.IsNullOrWhiteSpace(path)) return null;
        var authority = config.GetString($"{ConfigPath}.ca", null);
        return Load(new TlsFiles(path, config.GetString($"{ConfigPath}.password", null), string.IsNullOrWhiteSpace(authority) ? null : authority));
    }

    /// <summary>Whether <paramref name="config"/> turns TLS on (a certificate under <see cref="ConfigPath"/>, or Akka's own enable-ssl).</summary>
    public static bool IsOn(Config config) =>
        !string.IsNullOrWhiteSpace(config.GetString($"{ConfigPath}.certificate", null)) || config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false);

    /// <summary>Loads and checks <paramref name="files"/>.</summary>
    /// <exception cref="InvalidInputException">A file is missing or unreadable, the password is wrong, the certificate has no key, has expired, or is not from the CA.</exception>
    public static NodeTls Load(TlsFiles files)
    {
        var what = $"--tls-cert {files.Certificate}";
        if (!File.Exists(files.Certificate)) throw new InvalidInputException($"{what}: file not found");
        X509Certificate2Collection bundle;
        try
        {
            bundle = X509CertificateLoader.LoadPkcs12CollectionFromFile(files.Certificate, string.IsNullOrEmpty(files.Password) ? null : files.Password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            var password = string.IsNullOrEmpty(files.Password) ? "no password was given (--tls-password or BACKPROP_TLS_PASSWORD)" : "is the password (--tls-password or BACKPROP_TLS_PASSWORD) right?";
            throw new InvalidInputException($"{what}: cannot read it as a PKCS#12 (.pfx) file with its private key: {e.Message.TrimEnd('.')}; {password}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{what}: cannot read it ({e.Message})", e);
        }

        var withKey = bundle.Where(c => c.HasPrivateKey).ToList();
        if (withKey.Count == 0) throw new InvalidInputException($"{what}: holds no private key (a node needs its certificate with its key, in a .pfx made by deploy/certs.sh or openssl pkcs12 -export)");
        // The node's own certificate: the one with a key that is not a CA.
        var certificate = withKey.FirstOrDefault(c => !IsAuthority(c)) ?? withKey[0];
        var now = DateTime.Now;
        if (certificate.NotAfter < now) throw new InvalidInputException($"{what}: the certificate {certificate.Subject} expired on {certificate.NotAfter:yyyy-MM-dd HH:mm}; make a new one (deploy/certs.sh)");
        if (certificate.NotBefore > now) throw new InvalidInputException($"{what}: the certificate {certificate.Subject} is not valid before {certificate.NotBefore:yyyy-MM-dd HH:mm} (is this machine's clock right?)");
        if (!HasKeyThatWorks(certificate)) throw new InvalidInputException($"{what}: the private key of {certificate.Subject} cannot be used (neither RSA nor ECDSA)");

        var others = bundle.Where(c => !ReferenceEquals(c, certificate)).ToList();
        var intermediates = new X509Certificate2Collection(others.Where(c => IsAuthority(c) && !IsSelfSigned(c)).ToArray());
        X509Certificate2Collection authorities;
        if (files.Authority is { } caPath)
        {
            if (!File.Exists(caPath)) throw new InvalidInputException($"--tls-ca {caPath}: file not found");
            authorities = [];
            try
            {
                authorities.ImportFromPemFile(caPath);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                throw new InvalidInputException($"--tls-ca {caPath}: cannot read it as PEM certificates ({e.Message})", e);
            }
            if (authorities.Count == 0) throw new InvalidInputException($"--tls-ca {caPath}: holds no certificate (expected -----BEGIN CERTIFICATE-----)");
        }
        else
        {
            authorities = new X509Certificate2Collection(others.Where(c => IsAuthority(c) && IsSelfSigned(c)).ToArray());
            if (authorities.Count == 0)
                throw new InvalidInputException($"{what}: holds no CA certificate to trust peers by; give the cluster's CA with --tls-ca (BACKPROP_TLS_CA), or make the .pfx with deploy/certs.sh, which puts the CA in it");
        }

        var tls = new NodeTls(certificate, authorities, intermediates, files.Certificate);
        // A node whose own certificate its peers would refuse is a set-up mistake: say so now, not at the first connection.
        if (tls.Check(certificate) is { } problem)
            throw new InvalidInputException($"{what}: its own certificate would be refused by its peers: {problem}");
        return tls;
    }

    /// <summary>
    /// Why a peer presenting <paramref name="peer"/> must be refused, or null if it is a member: its
    /// certificate chains to one of <see cref="Authorities"/> (and nothing else: the system's CA store
    /// is not consulted), is valid now, and allows TLS client and server authentication.
    /// </summary>
    public string? Check(X509Certificate? peer)
    {
        if (peer is null) return "it presented no certificate";
        using var certificate = peer as X509Certificate2 is { } c ? X509CertificateLoader.LoadCertificate(c.RawData) : X509CertificateLoader.LoadCertificate(peer.GetRawCertData());
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(Authorities);
        policy.ExtraStore.AddRange(Intermediates);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.VerificationFlags = X509VerificationFlags.NoFlag;
        // Every node is both a TLS server and a TLS client.
        policy.ApplicationPolicy.Add(ServerAuthentication);
        policy.ApplicationPolicy.Add(ClientAuthentication);
        if (chain.Build(certificate)) return null;
        var reasons = chain.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.NoError)
            .Select(s => s.Status switch
            {
                X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "it is not issued by the cluster's CA",
                X509ChainStatusFlags.NotTimeValid => "it has expired or is not valid yet",
                X509ChainStatusFlags.NotValidForUsage => "it does not allow both TLS server and client authentication (extended key usage)",
                X509ChainStatusFlags.NotSignatureValid => "its signature does not verify",
                _ => s.Status.ToString(),
            })
            .Distinct();
        return $"certificate {certificate.Subject} (issuer {certificate.Issuer}): {string.Join("; ", reasons)}";
    }

    /// <summary>
    /// Akka.Remote's TLS: this certificate, mutual authentication, and <see cref="Check"/> as the
    /// validator on both sides of every connection (a refused peer is logged as a warning).
    /// </summary>
    public DotNettySslSetup AkkaSetup() => new(
        Certificate, suppressValidation: false, requireMutualAuthentication: true, validateCertificateHostname: false,
        customValidator: (certificate, _, peer, _, log) =>
        {
            if (Check(certificate) is not { } problem) return true;
            log.Warning("TLS: refusing {0}: {1}", peer, problem);
            return false;
        });

    /// <summary>
    /// Authenticates <paramref name="stream"/> as the TLS client (<paramref name="outbound"/>: this side
    /// connected to <paramref name="peer"/>) or the TLS server, each side presenting its certificate and
    /// checking the other's with <see cref="Check"/>.
    /// </summary>
    /// <exception cref="AuthenticationException">The handshake failed; the message says why (a refused certificate names the problem).</exception>
    /// <exception cref="IOException">The handshake did not complete within <see cref="HandshakeTimeout"/>, or the connection broke.</exception>
    public Stream Wrap(Stream stream, bool outbound, string peer)
    {
        string? refusal = null;
        bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            refusal = Check(certificate);
            return refusal is null;
        }
        var ssl = new SslStream(stream, leaveInnerStreamOpen: false, Validate);
        using var timeout = new CancellationTokenSource(HandshakeTimeout);
        try
        {
            if (outbound)
            {
                var colon = peer.LastIndexOf(':');
                ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = colon > 0 ? peer[..colon].Trim('[', ']') : peer,
                    ClientCertificateContext = _context,
                    EnabledSslProtocols = Protocols,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                }, timeout.Token).GetAwaiter().GetResult();
            }
            else
            {
                ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = _context,
                    ClientCertificateRequired = true,
                    EnabledSslProtocols = Protocols,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                }, timeout.Token).GetAwaiter().GetResult();
            }
            return ssl;
        }
        catch (Exception e)
        {
            ssl.Dispose();
            if (e is OperationCanceledException) throw new IOException($"TLS handshake with {peer}: no handshake within {HandshakeTimeout.TotalSeconds:0} s", e);
            if (refusal is not null) throw new AuthenticationException($"TLS handshake with {peer}: refused, {refusal}", e);
            if (e is AuthenticationException or IOException) throw new AuthenticationException($"TLS handshake with {peer} failed: {Innermost(e).Message}", e);
            throw;
        }
    }

    private static bool IsAuthority(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);

    private static bool IsSelfSigned(X509Certificate2 certificate) => certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);

    private static bool HasKeyThatWorks(X509Certificate2 certificate)
    {
        try
        {
            using var rsa = certificate.GetRSAPrivateKey();
            using var ecdsa = rsa is null ? certificate.GetECDsaPrivateKey() : null;
            return rsa is not null || ecdsa is not null;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
