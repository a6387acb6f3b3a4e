#!/usr/bin/env bash
# The accuracy cost of --half-gradients: the same runs (net, seed, optimizer, batch 256) with
# gradient sums sent in float32 and in float16, on Fashion-MNIST. The rounding happens in the worker
# whatever the transport, and local mode gives the same bits as a cluster with the same chunks, so
# the runs use local mode (2 worker actors, one thread each).
#
#   bench/half-precision.sh [--data DIR] [--seeds 1,2,3] [--configs a,b,c] [--logs DIR]
#
# Configurations (the nets of bench/nets.tsv):
#   a  784-256-128-10, momentum 0.9, η 0.05, 15 epochs (the time-to-accuracy setup)
#   b  784-30-10, SGD η 1, 15 epochs (the seed article's units and cost)
#   c  784-1024-1024-10, momentum 0.9, η 0.05, 5 epochs
# Prints per configuration and seed: the final test accuracy and loss with float32 and float16
# gradients, the largest per-epoch accuracy difference, and the first epoch at 0.88 test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
data=$default_data
seeds=1,2,3 configs=a,b,c logs=""
parse_options "--data=data --seeds=seeds --configs=configs --logs=logs" "$@"
check_data

# Sets net_args (the net) and train_args (optimizer, epochs) of configuration $1, and its label.
set_config() {
  case "$1" in
    a) set_net_args 784-256-128-10; train_args=(--optimizer momentum --momentum 0.9 --lr 0.05 --epochs 15) ;;
    b) set_net_args 784-30-10; train_args=(--optimizer sgd --lr 1 --epochs 15) ;;
    c) set_net_args 784-1024-1024-10; train_args=(--optimizer momentum --momentum 0.9 --lr 0.05 --epochs 5) ;;
    *) echo "error: unknown configuration $1" >&2; exit 2 ;;
  esac
  label="${net_args[*]} ${train_args[*]}"
}

IFS=, read -ra config_list <<< "$configs"
IFS=, read -ra seed_list <<< "$seeds"
for config in "${config_list[@]}"; do set_config "$config"; done # an unknown one stops the script here
open_logs "$logs"

build_release

for config in "${config_list[@]}"; do
  set_config "$config"
  echo "$label" > "$logs/$config.label"
  for seed in "${seed_list[@]}"; do
    for precision in single half; do
      flag=(); [ "$precision" = half ] && flag=(--half-gradients)
      echo "configuration $config, seed $seed, $precision…" >&2
      dotnet "$coordinator_dll" train --data "$data" "${net_args[@]}" "${train_args[@]}" --batch-size 256 --workers 2 --threads 1 \
        --seed "$seed" ${flag[@]+"${flag[@]}"} > "$logs/$config-$seed-$precision.log"
    done
  done
done

python3 - "$logs" "$configs" "$seeds" <<'PY'
import re, sys
logs, configs, seeds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
names = {c: open(f"{logs}/{c}.label").read().strip() for c in configs}
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
