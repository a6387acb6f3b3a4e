using Backprop.Engine;
using MathNet.Numerics.Statistics;
using Spectre.Console;

namespace Backprop.Benchmarks.Steps;

/// <summary>One row of the throughput table: a net at a thread count, and what its repetitions measured.</summary>
internal sealed record StepRow(ReferenceNet Net, int Threads, double FlopsPerSample, Measurement Measurement);

/// <summary>What <c>step</c> prints: the run's facts, the throughput table, the GEMMs-alone table, the phases.</summary>
internal sealed class StepReport(IAnsiConsole console)
{
    /// <summary>The machine, the data, the sgemm peak now, PyTorch, and which sides are paired with ours.</summary>
    public void Facts(string machine, string data, OpenBlasSides.SgemmNow sgemm, string pytorch, bool withPeer)
    {
        var facts = new List<(string, string)> { ("machine", machine), ("data", data) };
        facts.Add(("sgemm", sgemm.OpenBlas is { } peak
            ? $"1024³ on 1 thread, best of 15 now: OpenBLAS cblas_sgemm {peak:F1} GFLOP/s ({sgemm.Configuration}), our Gemm.Multiply {sgemm.Ours:F1} GFLOP/s; " +
              "the peak each row is held to is OpenBLAS's, timed again beside each of its repetitions"
            : $"OpenBLAS not found: no peak to compare with; our Gemm.Multiply 1024³ on 1 thread: {sgemm.Ours:F1} GFLOP/s"));
        facts.Add(("pytorch", pytorch));
        var others = new[]
        {
            withPeer ? "PyTorch's" : null,
            sgemm.OpenBlas is null ? null : "the OpenBLAS GEMMs alone (1-thread rows)",
            sgemm.OpenBlas is null ? null : "OpenBLAS sgemm 1024³ (1 thread)",
        }.OfType<string>().ToArray();
        if (others.Length > 0)
        {
            facts.Add(("pairs", $"each of our repetitions is timed right beside one of each: {string.Join("; ", others)}; " +
                "the order rotates, and a ratio is the median of the repetitions' ratios"));
        }
        console.Write(Tables.Facts(facts));
    }

    /// <summary>Ours, PyTorch's and the peak's samples/s and GFLOP/s, a row per net and thread count.</summary>
    public void Throughput(IReadOnlyList<StepRow> rows)
    {
        var table = Tables.Create("net", "threads", "ours samples/s", "GFLOP/s", "of t·peak", "PyTorch samples/s", "ours/PyTorch", "pair range");
        for (var i = 0; i < rows.Count; i++)
        {
            var (net, t, flops, m) = rows[i];
            var ratios = m.OursOver(Side.PyTorch);
            var ofPeak = m.OursOver(Side.Peak);
            var theirs = m.MedianOf(Side.PyTorch);
            table.AddTextRow(
                i == 0 || rows[i - 1].Net != net ? net.Architecture.ToString() : "",
                $"{t}",
                $"{m.OursMedian:N0}",
                $"{flops * m.OursMedian / 1e9:F1}",
                ofPeak.Length == 0 ? "-" : $"{ofPeak.Median() / t:P0}",
                double.IsNaN(theirs) ? "-" : $"{theirs:N0}",
                ratios.Length == 0 ? "-" : Ratio(ratios.Median()),
                ratios.Length == 0 ? "-" : $"{Ratio(ratios.Min())}–{Ratio(ratios.Max())}");
        }
        console.Write(table);
        Notes(
            "samples/s: one step = gather the batch, forward, backward, SGD update (medians of the repetitions); GFLOP/s counts",
            "2·n_in·n_out per layer for the forward pass and the weight gradient, and again for the backward error of every layer",
            "but the first; of t·peak: our GFLOP/s over t times OpenBLAS's 1-thread sgemm 1024³, timed in the same repetition",
            "(median of the repetitions).");
    }

    /// <summary>The 1-thread rows against the step's products alone in OpenBLAS, when they were timed.</summary>
    public void GemmsAlone(IReadOnlyList<StepRow> rows)
    {
        var floors = rows.Where(r => r.Threads == 1 && r.Measurement.Others[Side.Gemms] is not null).ToArray();
        if (floors.Length == 0) return;
        var table = Tables.Create("GEMMs alone", "threads", "GEMMs-only samples/s", "ours/GEMMs", "PyTorch/GEMMs", "peak GFLOP/s", "GEMMs/peak", "PyTorch/peak");
        foreach (var (net, t, flops, m) in floors)
        {
            var theirsOverGemms = m.Over(Side.PyTorch, Side.Gemms);
            var theirsOfPeak = m.Over(Side.PyTorch, Side.Peak);
            var gemmsOfPeak = m.Over(Side.Gemms, Side.Peak);
            table.AddTextRow(
                net.Architecture.ToString(),
                $"{t}",
                $"{m.MedianOf(Side.Gemms):N0}",
                Ratio(m.OursOver(Side.Gemms).Median()),
                theirsOverGemms.Length == 0 ? "-" : Ratio(theirsOverGemms.Median()),
                $"{m.MedianOf(Side.Peak) * flops / 1e9:F1}",
                gemmsOfPeak.Length == 0 ? "-" : $"{gemmsOfPeak.Median():P0}",
                theirsOfPeak.Length == 0 ? "-" : $"{theirsOfPeak.Median():P0}");
        }
        console.Write(table);
        Notes(
            "GEMMs alone: only the step's matrix products (o·Wᵀ and Δᵀ·o for every layer, Δ·W for every layer but the first) in",
            "OpenBLAS cblas_sgemm on 1 thread, timed in the same repetitions as the 1-thread rows above: how fast a step could be if",
            "it were nothing but OpenBLAS products. peak: OpenBLAS sgemm 1024³ on 1 thread in the same repetitions (median);",
            "the ratios are medians of each repetition's ratio.");
    }

    /// <summary>Where a 1-thread step's time went, phase by phase, each product beside the same product in OpenBLAS.</summary>
    public void Phases(PhaseProfile p)
    {
        var L = p.Architecture.LayerCount;
        var total = p.PerStep(p.Total);
        var blas = p.OpenBlas;
        var table = blas is null
            ? Tables.Create("phase", "ours", "of step")
            : Tables.Create("phase", "ours", "of step", "OpenBLAS", "ours/OpenBLAS");
        var accounted = 0.0;
        void Line(string what, double ms, double? openBlas = null)
        {
            accounted += ms;
            // A row with no OpenBLAS product leaves those columns empty.
            table.AddTextRow(openBlas is { } b ? [what, Ms(ms), $"{ms / total:P1}", Ms(b), $"{ms / b:F2}"] : [what, Ms(ms), $"{ms / total:P1}"]);
        }
        double Ours(EnginePhase phase, int layer) => p.PerStep(p.Ours[phase, layer]);
        double? Blas(EnginePhase phase, int layer) => blas is null ? null : p.PerStep(blas[phase, layer]);
        Line("pack the weights into panels", Ours(EnginePhase.PackWeights, 0));
        for (var l = 0; l < L; l++) Line($"forward o{l + 1} = f(o{l}·W{l}ᵀ + b{l})", Ours(EnginePhase.Forward, l), Blas(EnginePhase.Forward, l));
        Line("output layer: a, C(x), Δ", Ours(EnginePhase.OutputRows, 0));
        for (var l = L - 1; l >= 0; l--)
        {
            Line($"Δ{l}ᵀ tiles and ∂C/∂b{l}", Ours(EnginePhase.DeltaTilesAndBias, l));
            Line($"∂C/∂W{l} = Δ{l}ᵀ·o{l}", Ours(EnginePhase.WeightGradient, l), Blas(EnginePhase.WeightGradient, l));
            if (l > 0) Line($"Δ{l - 1} = (Δ{l}·W{l}) ⊙ f'(o{l})", Ours(EnginePhase.BackwardErrors, l), Blas(EnginePhase.BackwardErrors, l));
        }
        Line("SGD update", p.PerStep(p.Update));
        var rest = total - accounted;
        table.AddTextRow("the rest (batch order, labels, loss tree)", Ms(rest), $"{rest / total:P1}");
        if (blas is null)
        {
            table.AddTextRow("step", Ms(total));
        }
        else
        {
            var products = p.PerStep(blas.Total(EnginePhase.Forward) + blas.Total(EnginePhase.WeightGradient) + blas.Total(EnginePhase.BackwardErrors));
            table.AddTextRow("step (OpenBLAS: its products alone)", Ms(total), "", Ms(products), $"{total / products:F2}");
        }

        console.WriteLine();
        console.WriteLine($"phases of {p.Architecture}: one step on 1 thread, batch {p.Batch}, chunk {p.Chunk}, mean of {p.Steps} steps" +
            (blas is null ? "" : "; OpenBLAS: the same product alone, in steps alternating with ours"));
        console.Write(table);
    }

    /// <summary>A paragraph under a table (whose border leaves a blank line after it), wrapped at 120 columns or the terminal's width.</summary>
    private void Notes(params string[] parts)
    {
        var column = new GridColumn().Width(Math.Min(console.Profile.Width, 120)).Padding(0, 0, 0, 0);
        console.Write(new Grid().AddColumn(column).AddRow(new Text(string.Join(" ", parts))));
    }

    private static string Ratio(double ratio) => $"{ratio:F2}";

    private static string Ms(double ms) => $"{ms:F2} ms";
}
