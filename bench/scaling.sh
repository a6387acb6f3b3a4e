#!/usr/bin/env bash
# The measurements behind docs/scaling.md: coordinator + W worker processes (--threads 1) on
# 127.0.0.1 for W = 1, 2, 4, 8 and the reference nets of bench/nets.tsv (bench/cluster.sh --no-ddp
# --no-tta), then a least-squares fit of the per-step cost model and its extrapolation to 64 machines on a
# 10 Gbit/s network.
#
#   bench/scaling.sh [--data DIR] [--workers 1,2,4,8] [--epochs 6,4,4] [--logs DIR] [--fit-only DIR]
#
# The model (times per step, P parameters, W workers, N gradient nodes — N = W here, B = 256):
#   compute        t_net · B / W                         (t_net: one sample, one thread; from W = 1)
#   coordinator    (a · N + b) · P                        reduction of N node sums + optimizer update
#   serialization  s · (1 + N) · 4P                       one weights broadcast serialized, N gradients read
#   waiting        w0 + w1 · (W + N) · 4P                 transport (Akka.Remote, sockets, the workers'
#                                                         own (de)serialization) and scheduling
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
import glob, os, re, statistics, sys
logs, ticks = sys.argv[1], int(sys.argv[2])
B = 256
med = statistics.median

runs = []
for path in sorted(glob.glob(f"{logs}/w*/throughput-*.coordinator")):
    W = int(re.search(r"/w(\d+)/", path).group(1))
    net = re.search(r"throughput-(.+)\.coordinator$", path).group(1)
    text = open(path).read()
    P = int(re.search(r"\(([\d,]+) parameters\)", text).group(1).replace(",", ""))
    stats = [tuple(float(x) for x in m.groups()) for m in re.finditer(
        r"per step ([\d.]+) ms: slowest worker compute ([\d.]+), coordinator ([\d.]+), serialization ([\d.]+), waiting ([\d.]+); ([\d.]+) MB", text)][1:]
    rates = [float(m.group(1).replace(",", "")) for m in re.finditer(r"(?m)^epoch +\d+/\d+ .* ([\d,]+) samples/s$", text)][1:]
    col = lambda i: med(s[i] for s in stats)
    runs.append(dict(net=net, W=W, N=W, P=P, step=col(0), compute=col(1), coord=col(2), ser=col(3), wait=col(4), mb=col(5), rate=med(rates)))
if not runs:
    sys.exit(f"no runs under {logs}")

nets = sorted({r["net"] for r in runs}, key=lambda n: [r["P"] for r in runs if r["net"] == n][0])
print("\n## measured (medians over the epochs after the first; ms per step)\n")
print("| net | P | W | samples/s | step | slowest worker compute | coordinator | serialization | waiting | MB serialized |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    print(f"| {r['net']} | {r['P']:,} | {r['W']} | {r['rate']:,.0f} | {r['step']:.2f} | {r['compute']:.2f} | {r['coord']:.2f} | {r['ser']:.2f} | {r['wait']:.2f} | {r['mb']:.3f} |")

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

# CPU per step of every process between the two samples cluster.sh takes (end of epoch 2, end of
# the last-but-one epoch): ticks of /proc/<pid>/stat.
for r in runs:
    prefix = f"{logs}/w{r['W']}/throughput-{r['net']}"
    first, last = [l.split() for l in open(prefix + ".samples").read().split("\n") if l]
    epochs = len(re.findall(r"(?m)^epoch ", open(prefix + ".coordinator").read()))
    steps = -(-60000 // B) * (epochs - 3)
    cpu = [1000 * (float(b) - float(a)) / ticks / steps for a, b in zip(first[1:-2], last[1:-2])]
    r["cpu_coordinator"], r["cpu_worker"] = cpu[0], med(cpu[1:])

# compute: per-sample time of one thread from W = 1 (no core shared with another worker).
t_sample = {}
for net in nets:
    one = [r for r in runs if r["net"] == net and r["W"] == 1]
    base = one[0] if one else min((r for r in runs if r["net"] == net), key=lambda r: r["W"])
    t_sample[net] = base["compute"] / (B / base["W"])  # ms per sample
mb = lambda r: 4 * r["P"] / 1e6
a, b = lstsq([[r["N"] * r["P"], r["P"]] for r in runs], [r["coord"] for r in runs])
(s,) = lstsq([[(1 + r["N"]) * mb(r)] for r in runs], [r["ser"] for r in runs])
w0, w1 = lstsq([[1, (r["W"] + r["N"]) * mb(r)] for r in runs], [r["wait"] for r in runs])
c0, c1 = lstsq([[1, (r["W"] + r["N"]) * mb(r)] for r in runs], [r["cpu_coordinator"] for r in runs])
d0, d1 = lstsq([[1, 2 * mb(r)] for r in runs], [r["cpu_worker"] - t_sample[r["net"]] * B / r["W"] for r in runs])

print("\n## CPU per step (ms, from /proc; the two cores are shared by every process)\n")
print("| net | W | step (wall) | coordinator process | each worker process (median) | of which compute | all processes / wall (cores busy) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    total = r["cpu_coordinator"] + r["W"] * r["cpu_worker"]
    print(f"| {r['net']} | {r['W']} | {r['step']:.2f} | {r['cpu_coordinator']:.2f} | {r['cpu_worker']:.2f} | {t_sample[r['net']] * B / r['W']:.2f} | {total / r['step']:.2f} |")

print("\n## fitted constants (relative least squares over every run above)\n")
for net in nets:
    print(f"- compute, {net}: t = {1000 * t_sample[net]:.2f} µs per sample on one thread ({1 / t_sample[net] * 1000:,.0f} samples/s), from W = 1")
print(f"- coordinator reduce + update: a = {a * 1e6:.3f} ns per parameter and node, b = {b * 1e6:.3f} ns per parameter")
print(f"- serialization in the coordinator process: s = {s:.3f} ms per MB (one broadcast written, N gradients read)")
print(f"- waiting (wall): w0 = {w0:.3f} ms per step + w1 = {w1:.3f} ms per MB crossing the coordinator's connections")
print(f"- coordinator CPU: c0 = {c0:.3f} ms per step + c1 = {c1:.3f} ms per MB crossing its connections ({1000 / c1:,.0f} MB/s per core)")
print(f"- worker CPU beside compute: d0 = {d0:.3f} ms per step + d1 = {d1:.3f} ms per MB received or sent ({1000 / d1:,.0f} MB/s per core)")
print("\n| net | W | step measured | model (compute + a,b + s + w0,w1) | coordinator CPU measured | model (c0, c1) | worker CPU measured | model (t, d0, d1) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    model = r["compute"] + (a * r["N"] + b) * r["P"] + s * (1 + r["N"]) * mb(r) + w0 + w1 * (r["W"] + r["N"]) * mb(r)
    cc = c0 + c1 * (r["W"] + r["N"]) * mb(r)
    wc = t_sample[r["net"]] * B / r["W"] + d0 + d1 * 2 * mb(r)
    print(f"| {r['net']} | {r['W']} | {r['step']:.2f} | {model:.2f} | {r['cpu_coordinator']:.2f} | {cc:.2f} | {r['cpu_worker']:.2f} | {wc:.2f} |")

# 64 machines, 10 Gbit/s: a step is the workers' critical path (compute, their own transport CPU,
# the reduction) plus whichever of the coordinator's CPU (transport + serialization, as measured
# per byte here, on one core) and its NIC (fan-out + fan-in, 1.25 GB/s) is slower. Batch 256 over
# 64 workers needs --chunk-size 4 (a worker gets whole chunks); the per-byte costs do not change.
bw = 1.25e9
W = 64

def step(net, P, batch, variant):
    mbp = 4 * P / 1e6
    compute = t_sample[net] * batch / W
    if variant == "as built":
        out, into, hops, nodes = W, W, 1, W
    elif variant == "half-precision gradients":
        out, into, hops, nodes = W, W / 2, 1, W
    elif variant == "two-level tree (8 × 8)":
        out, into, hops, nodes = 8, 8, 2, 8          # every tree node handles 8 children, two levels
    else:  # ring all-reduce with the optimizer replicated on every worker (no broadcast)
        out, into, hops, nodes = 2 * (W - 1) / W, 2 * (W - 1) / W, 1, 1
    # A worker receives the weights and sends its gradient (in the ring every node is a "centre").
    worker = 0 if variant.startswith("ring") else d0 + d1 * 2 * mbp
    reduce_ = (a * nodes * hops + b) * P
    cpu, nic = (c0 + c1 * (out + into) * mbp) * hops, 1000 * (out + into) * 4 * P / bw * hops
    return compute, worker, reduce_, cpu, nic, compute + worker + reduce_ + max(cpu, nic)

print(f"\n## extrapolation: {W} worker machines on 10 Gbit/s (ms per step; compute on one thread of this machine)\n")
print("| net | global batch | design | compute | worker transport CPU | reduce + update | coordinator CPU (one core) | coordinator NIC | step | samples/s | compute share |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for net in nets:
    P = [r["P"] for r in runs if r["net"] == net][0]
    for batch in (256, 256 * W):
        for variant in ("as built", "half-precision gradients", "two-level tree (8 × 8)", "ring all-reduce, replicated optimizer"):
            comp, work, red, cpu, nic, total = step(net, P, batch, variant)
            print(f"| {net} | {batch:,} | {variant} | {comp:.2f} | {work:.1f} | {red:.1f} | {cpu:.1f} | {nic:.1f} | {total:.1f} | {batch / total * 1000:,.0f} | {100 * comp / total:.1f} % |")
    one = t_sample[net]
    print(f"| {net} | | (one thread, no network: {1 / one * 1000:,.0f} samples/s) | | | | | | | | |")
print("\n## where the coordinator becomes the bottleneck: workers W at which its time per step equals one worker's compute\n")
print("Coordinator time: CPU c1 · 2W · 4P (one core, as measured), or only the NIC 2W · 4P / 1.25 GB/s (transport CPU free).\n")
print("| net | global batch 256: CPU | global batch 256: NIC only | 256 per worker: CPU | 256 per worker: NIC only |")
print("|---|---:|---:|---:|---:|")
for net in nets:
    P = [r["P"] for r in runs if r["net"] == net][0]
    cpu_per_worker = c1 * 8 * P / 1e6            # ms per worker per step (weights out + gradient in)
    nic_per_worker = 1000 * 8 * P / bw
    tb = t_sample[net] * B
    print(f"| {net} | {(tb / cpu_per_worker) ** 0.5:.1f} | {(tb / nic_per_worker) ** 0.5:.1f} | {tb / cpu_per_worker:.1f} | {tb / nic_per_worker:.1f} |")
PY
