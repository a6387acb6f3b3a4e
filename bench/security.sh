#!/usr/bin/env bash
# What the security settings cost per step: the same cluster run (a coordinator and worker
# processes on 127.0.0.1) three ways, in turn, in one run of this script:
#   plain   no TLS, no checking (--verify-fraction 0);
#   tls     mutual TLS on both ports (certificates from deploy/certs.sh in the log directory);
#   verify  no TLS, --verify-fraction F (default 0.05): a second worker recomputes that share of the nodes.
#
#   bench/security.sh [options]
#   bench/security.sh --net 784-256-128-10 --epochs 6 --repeats 3
#
# Between the end of epoch 1 (warm-up, connections and handshakes done) and the end of the
# last-but-one epoch it measures the wall time per step and the CPU per step of all the processes
# together (from /proc). It prints them per repetition, and the medians of the paired ratios to the
# plain run. The model files of the three runs must be equal (checked).
#
# Options:
#   --data DIR         Fashion-MNIST IDX directory (default: $BACKPROP_DATASETS/fashion-mnist, else
#                      ../shared/datasets/fashion-mnist beside the checkout), or digits
#   --net NAME         a reference net of bench/nets.tsv (default 784-256-128-10)
#   --workers N        worker processes (default 2)
#   --threads T        threads per worker (default 1)
#   --batch B          batch size (default 256)
#   --epochs E         epochs per run, at least 3 (default 5)
#   --repeats R        plain/TLS/verify triples (default 3)
#   --verify F         the verify run's --verify-fraction (default 0.05)
#   --logs DIR         keep every log in DIR (default: a temporary directory, removed at the end)
#   -- ARGS            extra options for every coordinator (e.g. -- --reduce star)
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/common.sh
data=$default_data
net=784-256-128-10 workers=2 threads=1 batch=256 epochs=5 repeats=3 verify=0.05 logs="" extra=()
parse_options "--data=data --net=net --workers=workers --threads=threads --batch=batch --epochs=epochs
  --repeats=repeats --verify=verify --logs=logs --=extra" "$@"
[ "$data" = digits ] || check_data
[ "$epochs" -ge 3 ] || { echo "error: --epochs: at least 3" >&2; exit 2; }
set_net_args "$net"
if [ "$data" = digits ]; then net_args=(--hidden "$(echo "${net_args[1]}" | awk -F, '{ for (i = 2; i < NF; i++) printf "%s%s", (i > 2 ? "," : ""), $i }')" "${net_args[@]:2}"); fi
command -v openssl >/dev/null || { echo "error: openssl is needed for the certificates (apt-get install openssl)" >&2; exit 2; }

open_logs "$logs"
echo "building (Release)…" >&2
build_release
deploy/certs.sh --dir "$logs/certs" node >/dev/null
tls_args=(--tls-cert "$logs/certs/node.pfx")

# CPU ticks of every process in $run_pids, summed.
cpu_ticks() {
  local pid total=0 t
  for pid in "${run_pids[@]}"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# run NAME COORDINATOR-OPTIONS... [-- OPTIONS FOR EVERY PROCESS...]: one cluster run; prints "ms/step cpu-ms/step".
run() {
  local name=$1; shift
  local prefix="$logs/$name" own=() both=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do own+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  both=("$@")
  dotnet "$coordinator_dll" train --cluster --host 127.0.0.1 --port 0 --workers "$workers" --threads 1 \
    --data "$data" "${net_args[@]}" --optimizer sgd --lr 0.05 --batch-size "$batch" --epochs "$epochs" --seed 1 \
    --save "$prefix.bpm" ${own[@]+"${own[@]}"} ${both[@]+"${both[@]}"} ${extra[@]+"${extra[@]}"} > "$prefix.coordinator" 2>&1 &
  local coordinator=$!; pids+=("$coordinator")
  wait_for "$prefix.coordinator" '^listening ' "$coordinator" 120
  local port; port=$(sed -nE 's/^listening akka(\.ssl)?\.tcp:\/\/[^@]+@[^:]+:([0-9]+).*/\2/p' "$prefix.coordinator")
  run_pids=("$coordinator")
  for ((w = 1; w <= workers; w++)); do
    dotnet "$worker_dll" --coordinator "127.0.0.1:$port" --data "$data" --threads "$threads" ${both[@]+"${both[@]}"} > "$prefix.worker$w" 2>&1 &
    run_pids+=("$!"); pids+=("$!")
  done
  wait_for "$prefix.coordinator" '^epoch +1/' "$coordinator" 600
  local t0 c0 t1 c1
  t0=$(date +%s.%N); c0=$(cpu_ticks)
  wait_for "$prefix.coordinator" "^epoch +$((epochs - 1))/" "$coordinator" 3600
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  local status=0
  wait "$coordinator" || status=$?
  for pid in "${run_pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then echo "error: the coordinator exited with $status; $prefix.coordinator:" >&2; tail -5 "$prefix.coordinator" >&2; exit 1; fi
  local samples; samples=$(sed -nE 's/^data +[^:]+: ([0-9]+) training.*/\1/p' "$prefix.coordinator")
  local steps=$(( (epochs - 2) * ((samples + batch - 1) / batch) ))
  awk -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v steps="$steps" \
    'BEGIN { printf "%.3f %.3f\n", 1000 * (t1 - t0) / steps, 1000 * c / hz / steps }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "net $net, $workers workers × $threads threads, batch $batch, $epochs epochs, data $data, CPU $(cpu_name); per step over epochs 2..$((epochs - 1))"
printf '%-4s %11s %11s %11s %11s %11s %11s\n' rep "plain ms" "TLS ms" "verify ms" "plain CPU" "TLS CPU" "verify CPU"
rows=()
for ((r = 1; r <= repeats; r++)); do
  read -r plain_ms plain_cpu <<< "$(run "plain$r" --verify-fraction 0)"
  read -r tls_ms tls_cpu <<< "$(run "tls$r" --verify-fraction 0 -- "${tls_args[@]}")"
  read -r verify_ms verify_cpu <<< "$(run "verify$r" --verify-fraction "$verify")"
  for other in tls verify; do
    cmp -s "$logs/plain$r.bpm" "$logs/$other$r.bpm" || { echo "error: the $other run's model differs from the plain run's" >&2; exit 1; }
  done
  rows+=("$(ratio "$tls_ms" "$plain_ms") $(ratio "$tls_cpu" "$plain_cpu") $(ratio "$verify_ms" "$plain_ms") $(ratio "$verify_cpu" "$plain_cpu") $tls_ms $verify_ms $plain_ms $tls_cpu $verify_cpu $plain_cpu")
  printf '%-4s %11s %11s %11s %11s %11s %11s\n' "$r" "$plain_ms" "$tls_ms" "$verify_ms" "$plain_cpu" "$tls_cpu" "$verify_cpu"
done
printf '%s\n' "${rows[@]}" | awk -v verify="$verify" '
  function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                     return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  { tw[NR] = $1; tc[NR] = $2; vw[NR] = $3; vc[NR] = $4; dtw[NR] = $5 - $7; dvw[NR] = $6 - $7; dtc[NR] = $8 - $10; dvc[NR] = $9 - $10 }
  END {
    printf "median TLS / plain:                        wall per step × %.3f (%+.2f ms), CPU per step × %.3f (%+.2f ms, all processes)\n",
           median(tw, NR), median(dtw, NR), median(tc, NR), median(dtc, NR)
    printf "median --verify-fraction %s / plain:     wall per step × %.3f (%+.2f ms), CPU per step × %.3f (%+.2f ms, all processes)\n",
           verify, median(vw, NR), median(dvw, NR), median(vc, NR), median(dvc, NR) }'
echo "model files of every triple: identical"
