#!/usr/bin/env bash
# Measures how long the coordinator takes to move a lost worker's part of a step:
#  - SIGKILL: from the kill to "lost the connection" (part moved), to "is unreachable" (failure
#    detection) and to the node's removal (downing);
#  - SIGTERM: from the signal to "is leaving the cluster" (part moved, no failure detection).
# Uses the cluster settings the product ships (heartbeat 1 s, acceptable pause 2 s, SBR stable-after 5 s).
#
#   bench/failover.sh [repetitions]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
. bench/common.sh
build_release
log=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$log"' EXIT

# Akka's log timestamps ([11/28/2026 18:35:19.734Z]) to seconds since the epoch.
stamp() { date -u -d "$(echo "$1" | sed -E 's#^([0-9]+)/([0-9]+)/([0-9]+) #\3-\1-\2 #; s/Z$//')" +%s.%N; }
first_stamp() { grep -m1 "$2" "$1" | grep -oE '[0-9]+/[0-9]+/[0-9]+ [0-9:.]+Z' | head -1; }

run() { # signal port
  local signal=$1 port=$2 out="$log/$1-$2"
  dotnet "$coordinator_dll" train --cluster --port "$port" --workers 2 --epochs 400 --verbose > "$out.coordinator" 2>&1 &
  local coordinator=$!
  sleep 2
  dotnet "$worker_dll" --coordinator "127.0.0.1:$port" > "$out.w1" 2>&1 &
  dotnet "$worker_dll" --coordinator "127.0.0.1:$port" > "$out.w2" 2>&1 &
  local victim=$!
  until grep -qE "^epoch +2/" "$out.coordinator" 2>/dev/null; do sleep 0.1; done
  local t0; t0=$(date -u +%s.%N)
  kill "-$signal" "$victim"
  if [ "$signal" = KILL ]; then
    until grep -q "lost the connection to worker node" "$out.coordinator"; do sleep 0.05; done
    until grep -q "is unreachable" "$out.coordinator"; do sleep 0.05; done
    until grep -q "removing unreachable node\|Leader is removing" "$out.coordinator"; do sleep 0.05; done
    local moved unreachable removed
    moved=$(stamp "$(first_stamp "$out.coordinator" "lost the connection to worker node")")
    unreachable=$(stamp "$(first_stamp "$out.coordinator" "is unreachable")")
    removed=$(stamp "$(first_stamp "$out.coordinator" "Leader is removing")")
    printf "SIGKILL  part moved after %5.2f s   unreachable after %5.2f s   node removed after %5.2f s\n" \
      "$(echo "$moved - $t0" | bc)" "$(echo "$unreachable - $t0" | bc)" "$(echo "$removed - $t0" | bc)"
  else
    until grep -q "is leaving the cluster" "$out.coordinator"; do sleep 0.05; done
    local moved; moved=$(stamp "$(first_stamp "$out.coordinator" "is leaving the cluster")")
    printf "SIGTERM  part moved after %5.2f s\n" "$(echo "$moved - $t0" | bc)"
  fi
  kill "$coordinator" 2>/dev/null || true
  wait 2>/dev/null || true
}

for ((i = 0; i < reps; i++)); do
  run KILL $((4100 + 2 * i))
  run TERM $((4101 + 2 * i))
done
