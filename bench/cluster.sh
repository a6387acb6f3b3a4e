#!/usr/bin/env bash
# A coordinator and worker processes on 127.0.0.1 against PyTorch DDP (gloo) on the same machine,
# measured in the same run.
#
#   bench/cluster.sh [options]
#
# Throughput, for each net (the reference nets of bench/nets.tsv): a coordinator (train --cluster,
# batch 256, SGD, --stats, --threads 1 for its evaluation) and N worker processes (--threads 1)
# train a few epochs; right after, bench/pytorch_ddp.py trains the same net with N gloo ranks of
# one thread each, global batch 256. Per net it prints: samples/s (ours: median over the epochs
# after the first; DDP: median of ~1 s windows after warm-up) and the ratio; the --stats breakdown
# of a step (medians over the epochs after the first); CPU milliseconds per step of every process
# (from /proc, between the end of epoch 2 and the end of the last-but-one epoch); and bytes per
# step three ways: what the coordinator's serializer counted (--stats), the exact payload sizes of
# the messages (WeightsUpdate 49 + 4P bytes per worker, GradientComputed 89 + 4P per node), and the
# TCP payload the coordinator's sockets carried (ss, same interval as the CPU figures).
#
# Time to accuracy (unless --no-tta): for each seed, coordinator + N workers with
# `train --target-accuracy` against `pytorch_ddp.py --mode accuracy`, same net and hyper-parameters
# (784-256-128-10 ReLU/softmax, momentum 0.9, η 0.05, batch 256).
#
# Options:
#   --data DIR         Fashion-MNIST IDX directory (default: $BACKPROP_DATASETS/fashion-mnist,
#                      else ../shared/datasets/fashion-mnist beside the checkout)
#   --workers N        worker processes and DDP ranks (default 2)
#   --threads T        threads per worker and per rank (default 1)
#   --nets LIST        comma-separated names from bench/nets.tsv (default: all of them)
#   --epochs LIST      epochs of our run per net, in the order of --nets, each >= 4 (default 20,8,4)
#   --lr X             SGD learning rate of the throughput runs (default 0.05)
#   --tta-seeds LIST   seeds of the time-to-accuracy runs (default 1,2,3)
#   --tta-target A     test accuracy to reach (default 0.88)
#   --no-ddp           skip PyTorch        --no-throughput   skip throughput     --no-tta   skip time to accuracy
#   --python PATH      a python with torch (default: the first of /usr/bin/python3, python3 that imports it)
#   --logs DIR         keep every log in DIR (default: a temporary directory, removed at the end)
#   -- ARGS            extra options for every coordinator (e.g. -- --half-gradients)
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/common.sh
data=$default_data
workers=2 threads=1 nets=$(reference_nets) epochs_list="20,8,4" lr=0.05
tta_seeds="1,2,3" tta_target=0.88 ddp=1 throughput=1 tta=1 python="" logs="" extra=()
parse_options "--data=data --workers=workers --threads=threads --nets=nets --epochs=epochs_list --lr=lr
  --tta-seeds=tta_seeds --tta-target=tta_target --no-ddp=ddp=0 --no-throughput=throughput=0 --no-tta=tta=0
  --python=python --logs=logs --=extra" "$@"
check_data
IFS=, read -ra net_names <<< "$nets"
for net in "${net_names[@]}"; do set_net_args "$net"; done # an unknown name stops the script here
IFS=, read -ra net_epochs <<< "$epochs_list"
IFS=, read -ra seeds <<< "$tta_seeds"
if [ -z "$python" ]; then
  for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c "import torch" 2>/dev/null; then python=$candidate; break; fi
  done
fi
if [ "$ddp" = 1 ] && [ -z "$python" ]; then echo "error: no python with torch found (--python PATH, or --no-ddp)" >&2; exit 2; fi
summary_python=${python:-python3}

open_logs "$logs"

echo "building (Release)…" >&2
build_release

# One line: seconds, CPU ticks of the coordinator and each worker, TCP bytes sent (acked) and
# received on the coordinator's sockets.
sample() {
  local line; line="$(date +%s.%N)"
  for pid in "$coordinator_pid" "${worker_pids[@]}"; do
    line+=" $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
  done
  line+=" $(ss -tinpH state established 2>/dev/null | awk -v pid="pid=$coordinator_pid," '
      index($0, pid) { mine = 1; next }
      mine { for (i = 1; i <= NF; i++) { split($i, kv, ":"); if (kv[1] == "bytes_acked") s += kv[2]; if (kv[1] == "bytes_received") r += kv[2] } mine = 0 }
      END { printf "%.0f %.0f", s, r }')"
  echo "$line"
}

results="$logs/results"
: > "$results"
ticks=$(getconf CLK_TCK)

if [ "$throughput" = 1 ]; then
  for i in "${!net_names[@]}"; do
    net=${net_names[i]} epochs=${net_epochs[i]:-4}
    [ "$epochs" -ge 4 ] || { echo "error: --epochs: $net needs at least 4 epochs" >&2; exit 2; }
    prefix="$logs/throughput-$net"
    echo "$net: coordinator + $workers workers, $epochs epochs…" >&2
    set_net_args "$net"
    start_cluster "$prefix" "${net_args[@]}" --optimizer sgd --lr "$lr" --batch-size 256 --epochs "$epochs" --stats
    wait_for "$prefix.coordinator" '^epoch +2/' "$coordinator_pid" 1800
    sample > "$prefix.samples"
    wait_for "$prefix.coordinator" "^epoch +$((epochs - 1))/" "$coordinator_pid" 3600
    sample >> "$prefix.samples"
    finish_cluster "$prefix"
    echo "ours $net $prefix" >> "$results"
    if [ "$ddp" = 1 ]; then
      echo "$net: PyTorch DDP, $workers ranks…" >&2
      "$python" bench/pytorch_ddp.py --data "$data" --world "$workers" --threads "$threads" --nets "$net" --lr "$lr" > "$prefix.ddp" 2> "$prefix.ddp.err" \
        || { echo "error: pytorch_ddp.py failed:" >&2; tail -5 "$prefix.ddp.err" >&2; exit 1; }
      echo "ddp $net $prefix.ddp" >> "$results"
    fi
  done
fi

if [ "$tta" = 1 ]; then
  tta_net=784-256-128-10
  for seed in "${seeds[@]}"; do
    prefix="$logs/tta-seed$seed"
    echo "time to accuracy $tta_target, seed $seed: coordinator + $workers workers…" >&2
    set_net_args "$tta_net"
    start_cluster "$prefix" "${net_args[@]}" --optimizer momentum --momentum 0.9 --lr 0.05 --batch-size 256 \
      --epochs 40 --seed "$seed" --target-accuracy "$tta_target"
    finish_cluster "$prefix"
    echo "tta-ours $seed $prefix.coordinator" >> "$results"
    if [ "$ddp" = 1 ]; then
      echo "time to accuracy $tta_target, seed $seed: PyTorch DDP…" >&2
      "$python" bench/pytorch_ddp.py --data "$data" --world "$workers" --threads "$threads" --mode accuracy --net $tta_net \
        --optimizer momentum --momentum 0.9 --lr 0.05 --batch 256 --max-epochs 40 --seed "$seed" --target "$tta_target" \
        > "$prefix.ddp" 2> "$prefix.ddp.err" || { echo "error: pytorch_ddp.py failed:" >&2; tail -5 "$prefix.ddp.err" >&2; exit 1; }
      echo "tta-ddp $seed $prefix.ddp" >> "$results"
    fi
  done
fi

half=0
for arg in ${extra[@]+"${extra[@]}"}; do [ "$arg" = --half-gradients ] && half=1; done
"$summary_python" - "$results" "$workers" "$threads" "$ticks" "$tta_target" "$(uptime)" "$half" <<'PY'
import json, re, statistics, sys

results, workers, threads, ticks, target, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
gradient_bytes = 2 if sys.argv[7] == "1" else 4  # per parameter; --half-gradients halves the gradients only
median = statistics.median

def ours(prefix):
    text = open(prefix + ".coordinator").read()
    params = int(re.search(r"\(([\d,]+) parameters\)", text).group(1).replace(",", ""))
    samples = int(re.search(r"(\d+) training", text).group(1))
    epochs = [(int(m.group(1)), float(m.group(2).replace(",", ""))) for m in re.finditer(r"(?m)^epoch +(\d+)/\d+ .* ([\d,]+) samples/s$", text)]
    stats = [tuple(float(x) for x in m.groups()) for m in re.finditer(
        r"per step ([\d.]+) ms: slowest worker compute ([\d.]+), coordinator ([\d.]+), serialization ([\d.]+), waiting ([\d.]+); ([\d.]+) MB", text)]
    later = [r for e, r in epochs if e > 1]
    s = stats[1:]
    col = lambda i: median(x[i] for x in s)
    first, last = [l.split() for l in open(prefix + ".samples").read().split("\n") if l]
    steps = -(-samples // 256) * (len(epochs) - 3)   # from the end of epoch 2 to the end of the last-but-one
    seconds = float(last[0]) - float(first[0])
    cpu = [1000 * (float(b) - float(a)) / ticks / steps for a, b in zip(first[1:-2], last[1:-2])]
    tcp = (float(last[-2]) - float(first[-2]) + float(last[-1]) - float(first[-1])) / steps
    exact = workers * (49 + 4 * params) + workers * (89 + gradient_bytes * params)  # W weights out, one node per worker back
    return dict(params=params, rate=median(later), step=col(0), compute=col(1), coord=col(2), ser=col(3), wait=col(4),
                meter=col(5) * 1e6, exact=exact, tcp=tcp, cpu=cpu, wall=1000 * seconds / steps)

def ddp(path):
    for line in open(path):
        r = json.loads(line)
        if r.get("mode") == "throughput":
            return r

lines = [l.split() for l in open(results) if l.strip()]
rows = {}
for kind, key, path in lines:
    if kind == "ours": rows.setdefault(key, {})["ours"] = ours(path)
    if kind == "ddp": rows.setdefault(key, {})["ddp"] = ddp(path)

print(f"\n## coordinator + {workers} worker processes (--threads {threads}) vs PyTorch DDP (gloo, {workers} ranks × {threads} thread), batch 256, SGD")
print(f"({load.strip()})\n")
if rows:
    print("| net | parameters | ours samples/s | DDP samples/s | ours / DDP | DDP step-median samples/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for net, r in rows.items():
        o, d = r.get("ours"), r.get("ddp")
        ratio = f"{o['rate'] / d['samples_per_second']:.2f}" if o and d else "–"
        print(f"| {net} | {o['params']:,} | {o['rate']:,.0f} | {d['samples_per_second']:,.0f} | {ratio} | {d['step_median_samples_per_second']:,.0f} |" if d
              else f"| {net} | {o['params']:,} | {o['rate']:,.0f} | – | – | – |")
    print("\nPer step (ms; medians over the epochs after the first, from --stats) and CPU per step (ms, from /proc):\n")
    print("| net | step | slowest worker compute | coordinator (reduce + update) | serialization (coordinator process) | waiting | CPU coordinator | CPU workers |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for net, r in rows.items():
        o = r["ours"]
        print(f"| {net} | {o['step']:.2f} | {o['compute']:.2f} | {o['coord']:.2f} | {o['ser']:.2f} | {o['wait']:.2f} | {o['cpu'][0]:.2f} | {' / '.join(f'{c:.2f}' for c in o['cpu'][1:])} |")
    print(f"\nBytes per step (MB): serializer count in the coordinator (--stats), exact payloads (W·(49 + 4P) + W·(89 + {gradient_bytes}P)), TCP payload on the coordinator's sockets (ss):\n")
    print("| net | --stats | exact payloads | TCP (ss) | (TCP − --stats) per tensor message: envelope, control messages, heartbeats (bytes) |")
    print("|---|---:|---:|---:|---:|")
    for net, r in rows.items():
        o = r["ours"]
        print(f"| {net} | {o['meter'] / 1e6:.3f} | {o['exact'] / 1e6:.3f} | {o['tcp'] / 1e6:.3f} | {(o['tcp'] - o['meter']) / (2 * workers):,.0f} |")

tta = {}
for kind, seed, path in lines:
    if kind == "tta-ours":
        text = open(path).read()
        m = re.search(r"target accuracy [\d.]+ reached at epoch (\d+)/\d+ after ([\d.]+) s", text)
        tta.setdefault(seed, {})["ours"] = (int(m.group(1)), float(m.group(2))) if m else None
    if kind == "tta-ddp":
        r = [json.loads(l) for l in open(path) if '"mode": "accuracy"' in l][-1]
        tta.setdefault(seed, {})["ddp"] = (r["epochs"], r["seconds"]) if r["reached"] else None
if tta:
    print(f"\n## time to {target} test accuracy: 784-256-128-10 ReLU/softmax, momentum 0.9, η 0.05, batch 256\n")
    print("| seed | ours epochs | ours s | ours s/epoch | DDP epochs | DDP s | DDP s/epoch | DDP s / ours s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    fmt = lambda v: (f"{v[0]} | {v[1]:.1f} | {v[1] / v[0]:.2f}") if v else "not reached | – | –"
    for seed, r in tta.items():
        o, d = r.get("ours"), r.get("ddp")
        print(f"| {seed} | {fmt(o)} | {fmt(d)} | {d[1] / o[1]:.2f} |" if o and d else f"| {seed} | {fmt(o)} | {fmt(d)} | – |")
    both = [(r["ours"], r["ddp"]) for r in tta.values() if r.get("ours") and r.get("ddp")]
    if both:
        print(f"| median | {median(o[0] for o, _ in both)} | {median(o[1] for o, _ in both):.1f} | | {median(d[0] for _, d in both)} | {median(d[1] for _, d in both):.1f} | | {median(d[1] / o[1] for o, d in both):.2f} |")
PY
[ "$keep" = 1 ] && echo "logs: $logs" >&2 || true
