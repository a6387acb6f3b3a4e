using Akka.Configuration;
using Backprop.Clustering;
using Backprop.Tests.Common;

namespace Backprop.Runtime.Tests.Clustering;

/// <summary>Loading a node's certificate: what is accepted, and the errors for what is not.</summary>
public sealed class NodeTlsTests
{
    private static TestCertificates Certificates => TestCertificates.Instance;

    [Fact]
    public void PfxWithTheCa_Loads_AndTrustsThatCaOnly()
    {
        var tls = TestCertificates.Load(Certificates.Node);
        Assert.True(tls.Certificate.HasPrivateKey);
        Assert.Contains("CN=node", tls.Certificate.Subject);
        Assert.Single(tls.Authorities);
        Assert.Null(tls.Check(TestCertificates.Load(Certificates.OtherNode).Certificate));
        Assert.Contains("not issued by the cluster's CA", tls.Check(TestCertificates.Load(Certificates.Rogue).Certificate));
        Assert.Equal("it presented no certificate", tls.Check(null));
    }

    [Fact]
    public void MissingFile_IsAnErrorNamingIt()
    {
        var e = Assert.Throws<InvalidInputException>(() => NodeTls.Load(new TlsFiles("/nonexistent/node.pfx")));
        Assert.Equal("--tls-cert /nonexistent/node.pfx: file not found", e.Message);
    }

    [Fact]
    public void WrongPassword_IsAnErrorAskingForTheRightOne()
    {
        var e = Assert.Throws<InvalidInputException>(() => NodeTls.Load(new TlsFiles(Certificates.Node, "wrong")));
        Assert.StartsWith($"--tls-cert {Certificates.Node}: cannot read it", e.Message);
        Assert.Contains("password", e.Message);
    }

    [Fact]
    public void CertificateWithoutItsKey_IsAnError()
    {
        var e = Assert.Throws<InvalidInputException>(() => TestCertificates.Load(Certificates.NoKey));
        Assert.Contains("holds no private key", e.Message);
    }

    [Fact]
    public void ExpiredCertificate_IsAnErrorWithTheDate()
    {
        var e = Assert.Throws<InvalidInputException>(() => TestCertificates.Load(Certificates.Expired));
        Assert.Contains("CN=expired", e.Message);
        Assert.Contains("expired on", e.Message);
    }

    [Fact]
    public void PfxWithoutACa_NeedsTlsCa()
    {
        var e = Assert.Throws<InvalidInputException>(() => TestCertificates.Load(Certificates.WithoutAuthority));
        Assert.Contains("--tls-ca", e.Message);
        Assert.NotNull(TestCertificates.Load(Certificates.WithoutAuthority, Certificates.AuthorityPem));
    }

    [Fact]
    public void OwnCertificateFromAnotherCa_IsAnError()
    {
        var e = Assert.Throws<InvalidInputException>(() => TestCertificates.Load(Certificates.Rogue, Certificates.AuthorityPem));
        Assert.Contains("its own certificate would be refused by its peers", e.Message);
    }

    [Fact]
    public void NodeSettings_PutTheFilesInHocon_WhereAConfigFileCanSetThem()
    {
        var settings = new NodeSettings("worker", Tls: TestCertificates.Files(Certificates.Node));
        var config = settings.ToConfig();
        Assert.Equal(Certificates.Node, config.GetString("backprop.tls.certificate"));
        Assert.Equal(TestCertificates.Password, config.GetString("backprop.tls.password"));
        Assert.NotNull(NodeTls.FromConfig(config));
        Assert.Null(NodeTls.FromConfig(new NodeSettings("worker").ToConfig()));
        Assert.NotNull(settings.Channel.Tls);
        Assert.Null(new NodeSettings("worker").Channel.Tls);
    }

    [Fact]
    public void OpenClusterWarning_OnlyWithoutTls_OnAnAddressOthersCanReach()
    {
        Assert.Null(new NodeSettings("worker", "127.0.0.1").OpenClusterWarning());
        Assert.Null(new NodeSettings("worker", "localhost").OpenClusterWarning());
        Assert.Contains("TLS is off and this node listens on 0.0.0.0", new NodeSettings("worker", "0.0.0.0").OpenClusterWarning());
        Assert.Null(new NodeSettings("worker", "0.0.0.0", Tls: TestCertificates.Files(Certificates.Node)).OpenClusterWarning());
    }
}
