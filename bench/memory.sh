#!/usr/bin/env bash
# Resident memory of a long cluster run: a coordinator and N worker processes on 127.0.0.1 train
# for --duration seconds while VmRSS of every process is sampled every --interval seconds. Reports
# each process's RSS after warm-up (the first sample at or after --warmup seconds), at the end, the
# largest, and the growth from warm-up to the end; growth >= 10 % is flagged.
#
#   bench/memory.sh [options] [-- extra train options]
#
# Options:
#   --duration S   seconds of training to watch (default 600)
#   --warmup S     when the reference sample is taken (default 60)
#   --interval S   seconds between samples (default 5)
#   --workers N    worker processes (default 4)
#   --threads T    threads per worker (default 1)
#   --net NET      a reference net of bench/nets.tsv (default 784-256-128-10); batch 256, SGD η 0.05
#   --data DIR     Fashion-MNIST IDX directory (default: $BACKPROP_DATASETS/fashion-mnist,
#                  else ../shared/datasets/fashion-mnist beside the checkout)
#   --logs DIR     keep the logs and the samples (CSV) there (default: a temporary directory, removed)
#   --report DIR   only print the report of an earlier run kept with --logs DIR
# Beside the two samples the report gives the median RSS of the first and the last minute after
# warm-up and a least-squares slope (MB per minute): single samples move by several percent with
# every large-object-heap collection.
# Exit code: 0, or 1 when a process grew by 10 % or more or ended early.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/common.sh
data=$default_data
duration=600 warmup=60 interval=5 workers=4 threads=1 net=784-256-128-10 logs="" report="" extra=()
parse_options "--duration=duration --warmup=warmup --interval=interval --workers=workers --threads=threads
  --net=net --data=data --logs=logs --report=report --=extra" "$@"
check_data
[ "$warmup" -lt "$duration" ] || { echo "error: --warmup must be shorter than --duration" >&2; exit 2; }
set_net_args "$net"

if [ -n "$report" ]; then
  logs=$report keep=1
  epochs=$(grep -cE '^epoch ' "$logs/cluster.coordinator" || true)
  workers=$(($(head -1 "$logs/rss.csv" | tr ',' '\n' | wc -l) - 2))
else
open_logs "$logs"

echo "building (Release)…" >&2
build_release

# More epochs than the duration needs: the run is stopped with SIGTERM at the end. Logs:
# cluster.coordinator, cluster.worker<i>.
start_cluster "$logs/cluster" "${net_args[@]}" --optimizer sgd --lr 0.05 --batch-size 256 --epochs 100000 --stats
names=(coordinator)
for ((w = 1; w <= workers; w++)); do names+=("worker$w"); done
wait_for "$logs/cluster.coordinator" '^epoch +1/' "$coordinator_pid" 3600
echo "training: $net, $workers workers × $threads thread(s); sampling VmRSS every $interval s for $duration s (from the end of epoch 1)…" >&2

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }  # kB; 0 once it has ended
echo "seconds,${names[*]}" | tr ' ' ',' > "$logs/rss.csv"
start=$(date +%s.%N)
while :; do
  now=$(date +%s.%N)
  elapsed=$(echo "$now - $start" | bc)
  line="$elapsed"
  for pid in "${pids[@]}"; do line+=",$(rss "$pid")"; done
  echo "$line" >> "$logs/rss.csv"
  [ "$(echo "$elapsed >= $duration" | bc)" = 1 ] && break
  sleep "$interval"
done
epochs=$(grep -cE '^epoch ' "$logs/cluster.coordinator" || true)
kill -TERM "$coordinator_pid" 2>/dev/null || true
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
fi

status=0
python3 - "$logs/rss.csv" "$warmup" "$epochs" "$net" "$workers" "$threads" "$(uptime)" <<'PY' || status=$?
import csv, sys
path, warmup, epochs, net, workers, threads, load = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
rows = list(csv.reader(open(path)))
names, samples = rows[0][1:], [[float(x) for x in r] for r in rows[1:]]
reference = next(s for s in samples if s[0] >= warmup)
end = samples[-1]
print(f"\n## resident memory: coordinator + {workers} workers × {threads} thread(s), {net}, batch 256, {end[0]:.0f} s, {epochs} epochs, {len(samples)} samples")
print(f"({load.strip()})\n")
import statistics
after = [s for s in samples if s[0] >= warmup]
early = [s for s in after if s[0] < reference[0] + 60]
late = [s for s in after if s[0] > end[0] - 60]
print(f"| process | RSS at {reference[0]:.0f} s (MB) | RSS at {end[0]:.0f} s (MB) | growth | largest (MB) | median first / last minute (MB) | growth of the medians | slope (MB/min) | |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
bad = False
for i, name in enumerate(names, start=1):
    first, last = reference[i] / 1024, end[i] / 1024
    largest = max(s[i] for s in after) / 1024
    if last == 0:
        print(f"| {name} | {first:.1f} | ended early | | {largest:.1f} | | | | **ended** |"); bad = True; continue
    growth = 100 * (last - first) / first
    m1, m2 = statistics.median(s[i] for s in early) / 1024, statistics.median(s[i] for s in late) / 1024
    ts = [s[0] / 60 for s in after]; ys = [s[i] / 1024 for s in after]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / sum((t - mt) ** 2 for t in ts)
    flag = "**≥ 10 %**" if growth >= 10 else "flat"
    bad |= growth >= 10
    print(f"| {name} | {first:.1f} | {last:.1f} | {growth:+.1f} % | {largest:.1f} | {m1:.1f} / {m2:.1f} | {100 * (m2 - m1) / m1:+.1f} % | {slope:+.2f} | {flag} |")
sys.exit(1 if bad else 0)
PY
[ "$keep" = 0 ] || echo "logs and samples: $logs" >&2
exit $status
