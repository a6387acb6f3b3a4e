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
# (from /proc, between the end of epoch 2 and the end of the last-but-one epoch); and, for every
# process, the bytes its sockets carried per step (ss) against the exact size of the tensor frames
# the mode moves, and the CPU its tensor-channel threads burned per step and per MB.
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
#   -- ARGS            extra options for every coordinator (e.g. -- --reduce star)
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

# One line: seconds, then for the coordinator and each worker: CPU ticks of the process, CPU ticks
# of its tensor-channel threads (named tensor-in / tensor-out), TCP bytes its sockets sent (acked)
# and received.
sample() {
  local line; line="$(date +%s.%N)"
  for pid in "$coordinator_pid" "${worker_pids[@]}"; do
    line+=" $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    line+=" $(for t in /proc/$pid/task/*; do c=$(cat "$t/comm" 2>/dev/null); case $c in tensor-*) sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }';; esac; done | awk '{ s += $1 } END { print s + 0 }')"
    line+=" $(ss -tinpH state established 2>/dev/null | awk -v pid="pid=$pid," '
        index($0, pid) { mine = 1; next }
        mine { for (i = 1; i <= NF; i++) { split($i, kv, ":"); if (kv[1] == "bytes_acked") s += kv[2]; if (kv[1] == "bytes_received") r += kv[2] } mine = 0 }
        END { printf "%.0f %.0f", s, r }')"
  done
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

mode=allreduce
for ((i = 0; i < ${#extra[@]}; i++)); do [ "${extra[i]}" = --reduce ] && mode=${extra[i + 1]:-allreduce}; done
"$summary_python" - "$results" "$workers" "$threads" "$ticks" "$tta_target" "$(uptime)" "$mode" <<'PY'
import json, re, statistics, sys

results, workers, threads, ticks, target, load, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
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
    first, last = [[float(x) for x in l.split()] for l in open(prefix + ".samples").read().split("\n") if l]
    steps = -(-samples // 256) * (len(epochs) - 3)   # from the end of epoch 2 to the end of the last-but-one
    seconds = last[0] - first[0]
    d = [(b - a) for a, b in zip(first[1:], last[1:])]
    per = [d[4 * i:4 * i + 4] for i in range(workers + 1)]   # coordinator, then each worker: process ticks, channel ticks, sent, received
    cpu = [1000 * p[0] / ticks / steps for p in per]
    channel = [1000 * p[1] / ticks / steps for p in per]
    tcp = [(p[2] + p[3]) / steps for p in per]
    # Tensor bytes per step each process sends plus receives (88-byte frame headers included):
    # star: the coordinator sends W weights and gets one sum per worker; all-reduce: a worker sends its
    # parts of the W − 1 segments it does not own and the sum of its own to W − 1 peers, and receives as many.
    frame = lambda values: 88 + 4 * values
    if mode == "star":
        exact = [2 * workers * frame(params)] + [2 * frame(params)] * workers
    else:
        segment = params / workers
        exact = [0] + [4 * (workers - 1) * frame(segment)] * workers
    return dict(params=params, rate=median(later), step=col(0), compute=col(1), coord=col(2), ser=col(3), wait=col(4),
                exact=exact, tcp=tcp, cpu=cpu, channel=channel, wall=1000 * seconds / steps)

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
    print(f"\nTensor channel per step ({mode}): MB each process sent plus received on TCP (ss) against the frames' exact size, and the CPU of its channel threads (tensor-in/-out: socket calls, kernel copies, checksums), per MB:\n")
    print("| net | process | TCP MB | exact frames MB | channel CPU ms | channel CPU ms per MB |")
    print("|---|---|---:|---:|---:|---:|")
    for net, r in rows.items():
        o = r["ours"]
        for i, name in enumerate(["coordinator"] + [f"worker {w}" for w in range(1, workers + 1)]):
            per_mb = f"{o['channel'][i] / (o['tcp'][i] / 1e6):.2f}" if o["tcp"][i] > 1e5 else "–"
            print(f"| {net} | {name} | {o['tcp'][i] / 1e6:.3f} | {o['exact'][i] / 1e6:.3f} | {o['channel'][i]:.2f} | {per_mb} |")

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
