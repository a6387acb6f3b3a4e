#!/usr/bin/env bash
# The measurements behind docs/scaling.md: coordinator + W worker processes (--threads 1) on
# 127.0.0.1 for W = 1, 2, 4, 8 and the reference nets of bench/nets.tsv (bench/cluster.sh --no-ddp
# --no-tta, all-reduce), then a least-squares fit of the per-step cost model and its extrapolation
# to 64 machines on a 10 Gbit/s network.
#
#   bench/scaling.sh [--data DIR] [--workers 1,2,4,8] [--epochs 6,4,4] [--logs DIR] [--fit-only DIR]
#
# The model of the all-reduce (times per step, P parameters, W workers, B = 256; a worker sends and
# receives M = 4 · (W − 1)/W · 4P bytes of frames: its parts of the other segments and the sum of its own):
#   compute            t_net · B / W              (t_net: one sample, one thread; from W = 1)
#   channel CPU        e · M                      (the worker's tensor-in/-out threads, from /proc)
#   worker, the rest   d0 + dp · P                (control messages, adding parts, the optimizer update)
#   coordinator CPU    c0 + cw · W                (the control plane: layouts, requests, reports)
#   waiting (wall)     w0 + w1 · M                (latency of the control round trip and the two frame hops)
# --fit-only DIR refits the logs of an earlier run (DIR/w<W>/throughput-<net>.*).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
data=$default_data
workers_list=1,2,4,8 epochs=6,4,4 logs="" fit_only=""
parse_options "--data=data --workers=workers_list --epochs=epochs --logs=logs --fit-only=fit_only" "$@"
keep=1
if [ -n "$fit_only" ]; then
  logs=$fit_only
else
  open_logs "$logs"
  IFS=, read -ra counts <<< "$workers_list"
  for w in "${counts[@]}"; do
    echo "== $w worker(s)" >&2
    bench/cluster.sh --data "$data" --workers "$w" --threads 1 --epochs "$epochs" --no-ddp --no-tta --logs "$logs/w$w"
  done
fi

python3 - "$logs" "$(getconf CLK_TCK)" <<'PY'
import glob, re, statistics, sys
logs, ticks = sys.argv[1], int(sys.argv[2])
B = 256
med = statistics.median

runs = []
for path in sorted(glob.glob(f"{logs}/w*/throughput-*.coordinator")):
    W = int(re.search(r"/w(\d+)/", path).group(1))
    net = re.search(r"throughput-(.+)\.coordinator$", path).group(1)
    text = open(path).read()
    P = int(re.search(r"\(([\d,]+) parameters\)", text).group(1).replace(",", ""))
    samples = int(re.search(r"(\d+) training", text).group(1))
    stats = [tuple(float(x) for x in m.groups()) for m in re.finditer(
        r"per step ([\d.]+) ms: slowest worker compute ([\d.]+), coordinator ([\d.]+), serialization ([\d.]+), waiting ([\d.]+); ([\d.]+) MB", text)][1:]
    rates = [float(m.group(1).replace(",", "")) for m in re.finditer(r"(?m)^epoch +\d+/\d+ .* ([\d,]+) samples/s$", text)][1:]
    col = lambda i: med(s[i] for s in stats)
    prefix = path[:-len(".coordinator")]
    first, last = [[float(x) for x in l.split()] for l in open(prefix + ".samples").read().split("\n") if l]
    epochs = len(re.findall(r"(?m)^epoch ", text))
    steps = -(-samples // B) * (epochs - 3)
    d = [b - a for a, b in zip(first[1:], last[1:])]
    per = [d[4 * i:4 * i + 4] for i in range(W + 1)]   # coordinator, workers: process ticks, channel ticks, sent, received
    runs.append(dict(net=net, W=W, P=P, step=col(0), compute=col(1), wait=col(4), rate=med(rates),
                     cpu_coordinator=1000 * per[0][0] / ticks / steps,
                     cpu_worker=med(1000 * p[0] / ticks / steps for p in per[1:]),
                     channel=med(1000 * p[1] / ticks / steps for p in per[1:]),
                     tcp=med((p[2] + p[3]) / steps / 1e6 for p in per[1:])))
if not runs:
    sys.exit(f"no runs under {logs}")

def lstsq(rows, ys, relative=True):
    """Least squares for a few unknowns (normal equations, no numpy); relative: minimise relative errors."""
    if relative:
        rows, ys = [[x / y for x in r] for r, y in zip(rows, ys)], [1.0] * len(ys)
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(n)]
    for i in range(n):  # Gauss-Jordan
        p = max(range(i, n), key=lambda k: abs(a[k][i])); a[i], a[p], b[i], b[p] = a[p], a[i], b[p], b[i]
        for k in range(n):
            if k != i:
                f = a[k][i] / a[i][i]; a[k] = [x - f * y for x, y in zip(a[k], a[i])]; b[k] -= f * b[i]
    return [b[i] / a[i][i] for i in range(n)]

nets = sorted({r["net"] for r in runs}, key=lambda n: [r["P"] for r in runs if r["net"] == n][0])
moved = lambda W, P: 4 * (W - 1) / W * (88 * W + 4 * P) / 1e6 if W > 1 else 0.0   # MB of frames per worker per step
t_sample = {}
for net in nets:
    one = [r for r in runs if r["net"] == net and r["W"] == 1]
    base = one[0] if one else min((r for r in runs if r["net"] == net), key=lambda r: r["W"])
    t_sample[net] = base["compute"] / (B / base["W"])  # ms per sample

print("\n## measured (medians over the epochs after the first; ms per step; CPU from /proc)\n")
print("| net | P | W | samples/s | step | slowest worker compute | waiting | CPU coordinator | CPU per worker | of which channel | frames MB per worker (TCP) | channel ms per MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    per_mb = f"{r['channel'] / r['tcp']:.2f}" if r["tcp"] > 0.05 else "–"
    print(f"| {r['net']} | {r['P']:,} | {r['W']} | {r['rate']:,.0f} | {r['step']:.2f} | {r['compute']:.2f} | {r['wait']:.2f} | {r['cpu_coordinator']:.2f} | {r['cpu_worker']:.2f} | {r['channel']:.2f} | {r['tcp']:.3f} | {per_mb} |")

multi = [r for r in runs if r["W"] > 1]
e = sum(r["channel"] for r in multi) / sum(r["tcp"] for r in multi)                       # ms per MB, through the origin
d0, dp = lstsq([[1, r["P"] / 1e6] for r in runs], [max(1e-3, r["cpu_worker"] - r["compute"] - r["channel"]) for r in runs])
c0, cw = lstsq([[1, r["W"]] for r in runs], [r["cpu_coordinator"] for r in runs])
w0, w1 = lstsq([[1, moved(r["W"], r["P"])] for r in runs], [r["wait"] for r in runs])

print("\n## fitted constants (relative least squares over every run above)\n")
for net in nets:
    print(f"- compute, {net}: t = {1000 * t_sample[net]:.2f} µs per sample on one thread ({1 / t_sample[net] * 1000:,.0f} samples/s), from W = 1")
print(f"- channel CPU: e = {e:.3f} ms per MB sent or received by a worker ({1000 / e:,.0f} MB/s per core)")
print(f"- worker CPU beside compute and channel: d0 = {d0:.3f} ms per step + dp = {dp:.3f} ms per million parameters")
print(f"- coordinator CPU: c0 = {c0:.3f} ms per step + cw = {cw:.3f} ms per worker")
print(f"- waiting (wall): w0 = {w0:.3f} ms per step + w1 = {w1:.3f} ms per MB a worker moves")
print("\n| net | W | step measured | model (compute + w0 + w1·M) | worker CPU measured | model (compute + e·M + d0 + dp·P) | coordinator CPU measured | model (c0 + cw·W) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    M = moved(r["W"], r["P"])
    print(f"| {r['net']} | {r['W']} | {r['step']:.2f} | {r['compute'] + w0 + w1 * M:.2f} | {r['cpu_worker']:.2f} | {r['compute'] + e * M + d0 + dp * r['P'] / 1e6:.2f} | {r['cpu_coordinator']:.2f} | {c0 + cw * r['W']:.2f} |")

# 64 machines, 10 Gbit/s (1.25 GB/s each way per NIC). A step is the workers' critical path (compute,
# then moving and adding the segments, then the update) plus the control plane's round trip.
# All-reduce: a worker's channel threads move M bytes (CPU e · M on a core of their own, in
# parallel with the NIC's M / 2 each way); between two steps lies the control round trip, w0 as
# measured, plus the coordinator's time for 2 messages out and 2 in per worker (cw · W, one core).
# The Akka.Remote star the project had before (its constants fitted on an AMD EPYC Zen 3 machine,
# 2 vCPUs, in the same way): the coordinator's CPU and NIC carry 2W · 4P per step.
bw = 1.25e9
W = 64
OLD = dict(a=0.894e-6, b=1.379e-6, c0=1.96, c1=3.17, d0=1.26, d1=3.99)

def step(net, P, batch, variant):
    mbp = 4 * P / 1e6
    compute = t_sample[net] * batch / W
    if variant.startswith("all-reduce"):
        M = moved(W, P)
        transfer = max(e * M, 1000 * M / 2 * 1e6 / bw)
        worker = transfer + d0 + dp * P / 1e6
        control = w0 + cw * W   # the round trip measured at few workers, plus the coordinator's time per worker
        return compute, worker, control, compute + worker + control
    nodes, hops, out = (W, 1, W) if "star" in variant else (8, 2, 8)
    worker = OLD["d0"] + OLD["d1"] * 2 * mbp
    reduce_ = (OLD["a"] * nodes * hops + OLD["b"]) * P
    cpu, nic = (OLD["c0"] + OLD["c1"] * 2 * out * mbp) * hops, 1000 * 2 * out * 4 * P / bw * hops
    return compute, worker + reduce_, max(cpu, nic), compute + worker + reduce_ + max(cpu, nic)

variants = ("Akka.Remote star (before)", "two-level tree 8 × 8 over Akka.Remote (modelled before, not built)", "all-reduce over the tensor channel (as built)")
print(f"\n## extrapolation: {W} worker machines on 10 Gbit/s (ms per step; compute on one thread of this machine)\n")
print("| net | global batch | design | compute | worker: transfer + add + update | coordinator | step | samples/s | efficiency (compute / step) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
for net in nets:
    P = [r["P"] for r in runs if r["net"] == net][0]
    for batch in (256, 256 * W):
        for variant in variants:
            comp, work, coord, total = step(net, P, batch, variant)
            print(f"| {net} | {batch:,} | {variant} | {comp:.2f} | {work:.2f} | {coord:.2f} | {total:.1f} | {batch / total * 1000:,.0f} | {100 * comp / total:.1f} % |")

print("\n## workers at which communication equals compute (all-reduce, 10 Gbit/s)\n")
print("Communication per step: the worker's transfer, adds and update plus the control plane, w0 + cw · W.\n")
print("| net | global batch 256 | 256 samples per worker |")
print("|---|---:|---:|")
for net in nets:
    P = [r["P"] for r in runs if r["net"] == net][0]
    def comm(w):
        M = moved(w, P)
        return max(e * M, 1000 * M / 2 * 1e6 / bw) + d0 + dp * P / 1e6 + w0 + cw * w
    fixed = next((w for w in range(1, 100000) if comm(w) >= t_sample[net] * 256 / w), None)
    per_worker = next((w for w in range(1, 100000) if comm(w) >= t_sample[net] * 256), None)
    show = lambda w: f"{w:,}" if w else "beyond 100,000"
    print(f"| {net} | {show(fixed)} | {show(per_worker)} |")
PY
