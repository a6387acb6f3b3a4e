using System.Text.Json;
using Backprop.Benchmarks.Steps;

namespace Backprop.Benchmarks.Tests.Steps;

/// <summary>When PyTorch is fit to be measured against: on a BLAS whose threads are set, on the threads asked for.</summary>
public class PyTorchPeerTests
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    [Theory]
    [InlineData("""{"mkl": false, "openblas_is_torch_blas": true, "torch_sgemm": "/usr/lib/openblas-pthread/libblas.so.3"}""")]
    [InlineData("""{"mkl": true, "openblas_is_torch_blas": false, "torch_sgemm": null}""")]
    public void Unfit_OpenBlasTheScriptSetsOrMkl_IsFit(string header)
    {
        Assert.Null(PyTorchPeer.Unfit(Json(header)));
    }

    [Fact]
    public void Unfit_TheReferenceBlas_IsRefusedAndNamed()
    {
        var why = PyTorchPeer.Unfit(Json("""{"mkl": false, "openblas_is_torch_blas": false, "torch_sgemm": "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"}"""));

        Assert.NotNull(why);
        Assert.StartsWith("torch's sgemm_ is in /usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0, not in MKL", why);
    }

    [Fact]
    public void Unfit_AHeaderThatSaysNothingOfItsBlas_IsRefused()
    {
        var why = PyTorchPeer.Unfit(Json("""{"torch": "1.13.0"}"""));

        Assert.NotNull(why);
        Assert.Contains("a library the script could not find", why);
    }

    [Theory]
    [InlineData("""{"samples_per_second": 10, "threads": 1, "blas_threads": 1}""", 1, null)]
    [InlineData("""{"samples_per_second": 10, "threads": 2, "blas_threads": null}""", 2, null)]
    [InlineData("""{"samples_per_second": 10, "threads": 2, "blas_threads": 2}""", 1, "torch ran on 2 threads where 1 were asked for")]
    [InlineData("""{"samples_per_second": 10, "threads": 1, "blas_threads": 2}""", 1, "its OpenBLAS ran on 2 threads where 1 were asked for")]
    public void WrongThreads_ComparesBothCountsWithTheRequest(string answer, int threads, string? expected)
    {
        Assert.Equal(expected, PyTorchPeer.WrongThreads(Json(answer), threads));
    }
}
