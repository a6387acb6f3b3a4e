#!/usr/bin/env bash
# The accuracy cost of --half-gradients: the same runs (net, seed, optimizer, batch 256) with
# gradient sums sent in float32 and in float16, on Fashion-MNIST. The rounding happens in the worker
# whatever the transport, and local mode gives the same bits as a cluster with the same chunks, so
# the runs use local mode (2 worker actors, one thread each).
#
#   bench/half-precision.sh [--data DIR] [--seeds 1,2,3] [--configs a,b,c]
#
# Configurations:
#   a  784-256-128-10 ReLU/softmax, cross-entropy, momentum 0.9, η 0.05, 15 epochs (the time-to-accuracy setup)
#   b  784-30-10 logistic, quadratic, SGD η 1, 15 epochs (the seed article's units and cost)
#   c  784-1024-1024-10 ReLU/softmax, cross-entropy, momentum 0.9, η 0.05, 5 epochs
# Prints per configuration and seed: the final test accuracy and loss with float32 and float16
# gradients, the largest per-epoch accuracy difference, and the first epoch at 0.88 test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
data=$default_data
seeds=1,2,3 configs=a,b,c logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -d "$data" ] || { echo "error: --data $data: no such directory" >&2; exit 2; }
data=$(cd "$data" && pwd)
open_logs "$logs"

build_release

config_args() {
  case "$1" in
    a) echo "--layers 784,256,128,10 --activation relu --cost cross-entropy --optimizer momentum --momentum 0.9 --lr 0.05 --epochs 15" ;;
    b) echo "--layers 784,30,10 --activation logistic --cost quadratic --optimizer sgd --lr 1 --epochs 15" ;;
    c) echo "--layers 784,1024,1024,10 --activation relu --cost cross-entropy --optimizer momentum --momentum 0.9 --lr 0.05 --epochs 5" ;;
    *) echo "error: unknown configuration $1" >&2; exit 2 ;;
  esac
}

IFS=, read -ra config_list <<< "$configs"
IFS=, read -ra seed_list <<< "$seeds"
for config in "${config_list[@]}"; do
  for seed in "${seed_list[@]}"; do
    for precision in single half; do
      flag=(); [ "$precision" = half ] && flag=(--half-gradients)
      echo "configuration $config, seed $seed, $precision…" >&2
      # shellcheck disable=SC2046
      dotnet "$coordinator_dll" train --data "$data" $(config_args "$config") --batch-size 256 --workers 2 --threads 1 \
        --seed "$seed" ${flag[@]+"${flag[@]}"} > "$logs/$config-$seed-$precision.log"
    done
  done
done

python3 - "$logs" "$configs" "$seeds" <<'PY'
import re, sys
logs, configs, seeds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
names = {"a": "784-256-128-10 ReLU/CE, momentum η 0.05, 15 epochs", "b": "784-30-10 logistic/quadratic, SGD η 1, 15 epochs",
         "c": "784-1024-1024-10 ReLU/CE, momentum η 0.05, 5 epochs"}
def read(path):
    rows = [(int(m.group(1)), float(m.group(2)), float(m.group(3))) for m in
            re.finditer(r"(?m)^epoch +(\d+)/\d+ .* test loss ([\d.]+) acc ([\d.]+)", open(path).read())]
    return rows
print("\n| configuration | seed | float32 test acc | float16 test acc | Δ acc | float32 test loss | float16 test loss | largest per-epoch |Δ acc| | epoch at 0.88 (f32 / f16) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for c in configs:
    for s in seeds:
        f, h = read(f"{logs}/{c}-{s}-single.log"), read(f"{logs}/{c}-{s}-half.log")
        first = lambda rows: next((e for e, _, a in rows if a >= 0.88), "–")
        worst = max(abs(a[2] - b[2]) for a, b in zip(f, h))
        print(f"| {names[c]} | {s} | {f[-1][2]:.4f} | {h[-1][2]:.4f} | {h[-1][2] - f[-1][2]:+.4f} | {f[-1][1]:.4f} | {h[-1][1]:.4f} | {worst:.4f} | {first(f)} / {first(h)} |")
PY
