#!/usr/bin/env bash
# Starts a coordinator and N worker processes on 127.0.0.1 and trains: the one-machine version of
# the multi-machine commands in deploy/README.md.
#
#   deploy/local-cluster.sh [-n WORKERS] [-p PORT] [--] [train options...]
#   deploy/local-cluster.sh -n 4 -- --data fashion-mnist --hidden 256,128 --epochs 5
#
# Data options given after -- go to the coordinator and to every worker (workers load their own
# data). Exit code: the coordinator's.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=2
port=4053
while [ $# -gt 0 ]; do
  case "$1" in
    -n) workers="$2"; shift 2 ;;
    -p) port="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) break ;;
  esac
done

# The data options (with their values) that workers need too.
data_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --data|--test-data|--test-fraction|--label-column|--header|--split-seed|--classes)
      data_args+=("${args[i]}" "${args[i+1]:-}"); i=$((i + 1)) ;;
  esac
done

configuration=${CONFIGURATION:-Release}
dotnet build Backprop.Distributed.sln -c "$configuration" -v quiet -nologo >/dev/null
bin_coordinator="src/Coordinator/bin/$configuration/net10.0/backprop.dll"
bin_worker="src/Worker/bin/$configuration/net10.0/backprop-worker.dll"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

dotnet "$bin_coordinator" train --cluster --host 127.0.0.1 --port "$port" --workers "$workers" "$@" &
coordinator=$!
# Workers start once the coordinator accepts connections, so their first join does not fail.
for ((tries = 0; tries < 600; tries++)); do
  kill -0 "$coordinator" 2>/dev/null || break
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
kill -0 "$coordinator" 2>/dev/null || workers=0 # it stopped (bad options): no workers to start
for ((w = 1; w <= workers; w++)); do
  dotnet "$bin_worker" --coordinator "127.0.0.1:$port" "${data_args[@]}" > >(sed "s/^/[worker $w] /") 2>&1 &
  pids+=($!)
done
set +e
wait "$coordinator"
status=$?
set -e
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
exit $status
