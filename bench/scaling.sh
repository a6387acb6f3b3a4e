#!/usr/bin/env bash
# The measurements behind docs/scaling.md: coordinator + W worker processes (--threads 1) on
# 127.0.0.1 for W = 1, 2, 4, 8 and the three reference nets (bench/cluster.sh --no-ddp --no-tta),
# then a least-squares fit of the per-step cost model and its extrapolation to 64 machines on a
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
repo=$PWD
data=${BACKPROP_DATASETS:+$BACKPROP_DATASETS/fashion-mnist}
[ -n "$data" ] || data="$repo/../shared/datasets/fashion-mnist"
workers_list=1,2,4,8 epochs=6,4,4 logs="" fit_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --workers) workers_list=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --fit-only) fit_only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
keep=1
if [ -n "$fit_only" ]; then
  logs=$fit_only
else
  if [ -n "$logs" ]; then mkdir -p "$logs"; else logs=$(mktemp -d); keep=0; fi
  trap '[ "$keep" = 1 ] || rm -rf "$logs"' EXIT
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

def lstsq(rows, ys):
    """Least squares for a few unknowns via the normal equations (no numpy needed)."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(n)]
    for i in range(n):  # Gauss-Jordan
        p = max(range(i, n), key=lambda k: abs(a[k][i])); a[i], a[p], b[i], b[p] = a[p], a[i], b[p], b[i]
        for k in range(n):
            if k != i:
                f = a[k][i] / a[i][i]; a[k] = [x - f * y for x, y in zip(a[k], a[i])]; b[k] -= f * b[i]
    return [b[i] / a[i][i] for i in range(n)]

# compute: per-sample time of one thread from W = 1 (no core shared with another worker).
t_sample = {}
for net in nets:
    one = [r for r in runs if r["net"] == net and r["W"] == 1]
    base = one[0] if one else min((r for r in runs if r["net"] == net), key=lambda r: r["W"])
    t_sample[net] = base["compute"] / (B / base["W"])  # ms per sample
a, b = lstsq([[r["N"] * r["P"], r["P"]] for r in runs], [r["coord"] for r in runs])
(s,) = lstsq([[(1 + r["N"]) * 4 * r["P"] / 1e6] for r in runs], [r["ser"] for r in runs])
w0, w1 = lstsq([[1, (r["W"] + r["N"]) * 4 * r["P"] / 1e6] for r in runs], [r["wait"] for r in runs])

print("\n## fitted constants (this machine: 2 cores shared by the coordinator and every worker)\n")
for net in nets:
    print(f"- compute, {net}: t = {1000 * t_sample[net]:.2f} µs per sample on one thread ({1 / t_sample[net] * 1000:,.0f} samples/s)")
print(f"- coordinator: a = {a * 1e6:.3f} ns per parameter and node (reduction), b = {b * 1e6:.3f} ns per parameter (update)")
print(f"- serialization in the coordinator: s = {s:.3f} ms per MB serialized or read")
print(f"- waiting: w0 = {w0:.3f} ms per step, w1 = {w1:.3f} ms per MB crossing the coordinator's connections")
print("\n| net | W | step measured | model | compute | coordinator | serialization | waiting (model) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in sorted(runs, key=lambda r: (r["P"], r["W"])):
    mb = 4 * r["P"] / 1e6
    c_, co, se, wa = r["compute"], (a * r["N"] + b) * r["P"], s * (1 + r["N"]) * mb, w0 + w1 * (r["W"] + r["N"]) * mb
    print(f"| {r['net']} | {r['W']} | {r['step']:.2f} | {c_ + co + se + wa:.2f} | {c_:.2f} | {co:.2f} | {se:.2f} | {wa:.2f} |")

# 64 machines, 10 Gbit/s (1.25 GB/s each way at the coordinator's NIC), one worker each.
bw = 1.25e9
print("\n## extrapolation: 64 worker machines + a coordinator on 10 Gbit/s (ms per step)\n")
print("Compute at one thread of this machine per worker; the transport's CPU cost per byte (w1) as measured here.\n")
print("| net | global batch | compute | coordinator reduce + update | serialization | transport CPU (w1) | wire at the coordinator (fan-out + fan-in) | step | samples/s | compute share |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
W = N = 64
for net in nets:
    P = [r["P"] for r in runs if r["net"] == net][0]
    mb = 4 * P / 1e6
    for batch in (256, 256 * W):
        comp = t_sample[net] * batch / W
        coord = (a * N + b) * P
        ser = s * (1 + N) * mb
        cpu = w0 + w1 * (W + N) * mb
        wire = 1000 * (W + N) * 4 * P / bw
        step = comp + coord + ser + max(cpu, wire)
        print(f"| {net} | {batch:,} | {comp:.2f} | {coord:.1f} | {ser:.1f} | {cpu:.1f} | {wire:.1f} | {step:.1f} | {batch / step * 1000:,.0f} | {100 * comp / step:.1f} % |")
PY
