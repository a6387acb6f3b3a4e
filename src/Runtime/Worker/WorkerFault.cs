using System.Globalization;

namespace Backprop.Worker;

/// <summary>
/// A fault a worker injects into itself at a given step, for tests of the failure handling: the
/// environment variable BACKPROP_FAULT of a worker process, "PHASE:STEP". Phases:
/// <list type="bullet">
/// <item>kill-after-parts: SIGKILL itself right after handing its parts of step STEP to the channel (the reduce-scatter);</item>
/// <item>kill-after-sums: SIGKILL itself right after handing a summed segment of step STEP to the channel (the all-gather);</item>
/// <item>perturb: change one weight of its replica after the update that makes version STEP;</item>
/// <item>wrong-gradients: from step STEP on, multiply every gradient sum it computes by −20 before sending it (finite garbage);</item>
/// <item>hang-compute: from step STEP on, a computation never returns (the node stays up and heartbeats);</item>
/// <item>hang-after-parts: in step STEP, right after handing its parts to the channel and reporting its node, the worker actor never returns (the segments it owns are never added up).</item>
/// </list>
/// </summary>
public sealed record WorkerFault(string Phase, long Step)
{
    /// <summary>The environment variable a worker process reads it from.</summary>
    public const string Variable = "BACKPROP_FAULT";

    /// <summary>The phases.</summary>
    public const string KillAfterParts = "kill-after-parts", KillAfterSums = "kill-after-sums", Perturb = "perturb",
        WrongGradients = "wrong-gradients", HangCompute = "hang-compute", HangAfterParts = "hang-after-parts";

    private static readonly string[] Phases = [KillAfterParts, KillAfterSums, Perturb, WrongGradients, HangCompute, HangAfterParts];

    /// <summary>Parses "PHASE:STEP" (null or empty: no fault); anything else is an <see cref="InvalidInputException"/>.</summary>
    public static WorkerFault? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var phase = colon < 0 ? text : text[..colon];
        if (colon < 0 || !Phases.Contains(phase)
            || !long.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var step))
            throw new InvalidInputException($"{Variable}='{text}': expected PHASE:STEP, PHASE one of {string.Join(", ", Phases)}");
        return new WorkerFault(phase, step);
    }

    /// <summary>Acts when this fault's phase is <paramref name="phase"/> and its step <paramref name="step"/>: kills the process, or changes <paramref name="replica"/>.</summary>
    internal void At(string phase, long step, float[]? replica = null)
    {
        if (phase != Phase || step != Step) return;
        if (phase == Perturb)
        {
            if (replica is { Length: > 0 }) replica[0] += 1e-3f;
            return;
        }
        if (phase == HangAfterParts) Thread.Sleep(Timeout.Infinite);
        System.Diagnostics.Process.GetCurrentProcess().Kill();
    }

    /// <summary>Before computing a node of step <paramref name="step"/>: hang-compute blocks this thread for good from its step on.</summary>
    internal void BeforeCompute(long step)
    {
        if (Phase == HangCompute && step >= Step) Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>After computing a node sum of step <paramref name="step"/>: wrong-gradients scales it by −20 from its step on.</summary>
    internal void AfterCompute(long step, Training.GradientSum sum)
    {
        if (Phase != WrongGradients || step < Step) return;
        foreach (ref var value in sum.Values.AsSpan()) value *= -20f;
    }
}
