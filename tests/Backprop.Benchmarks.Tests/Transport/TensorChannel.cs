namespace Backprop.Benchmarks.Tests.Transport;

/// <summary>
/// The tests that open tensor-channel connections run one at a time: NetMQ's context and buffer pool are
/// one per process, and a whole <c>transport</c> run ends NetMQ's context when it is done.
/// </summary>
[CollectionDefinition(Collection)]
public static class TensorChannel
{
    public const string Collection = "tensor channel";
}
