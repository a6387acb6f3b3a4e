# shellcheck shell=bash disable=SC2034,SC2154
# (It sets variables the scripts read, and reads variables they set.)
# What the bench scripts share. Each sources this right after `cd`-ing to the repository root:
#   . bench/common.sh

# Fashion-MNIST: $BACKPROP_DATASETS/fashion-mnist if that is set, else ../shared/datasets/fashion-mnist
# beside the checkout.
default_data=${BACKPROP_DATASETS:+$BACKPROP_DATASETS/fashion-mnist}
[ -n "$default_data" ] || default_data="$PWD/../shared/datasets/fashion-mnist"

# Prints the script's help: its header comment, from the line after #! to `set -euo pipefail`.
script_help() {
  sed -n '2,/^set -euo/p' "bench/$(basename "$0")" | sed '$d; s/^# \{0,1\}//'
}

# parse_options SPEC "$@": reads the script's options into its variables. SPEC is a space-separated
# list of
#   --name=var          an option with a value, stored in $var
#   --name=var=value    an option without one, which sets $var to value
#   --=array            after `--`, the remaining arguments go to the array (without it, `--` is an error)
# -h and --help print the script's help and exit 0; anything else is an error (exit 2).
parse_options() {
  local spec=$1 item name rest=""
  local -A takes=() sets=()
  shift
  for item in $spec; do
    name=${item%%=*} item=${item#*=}
    if [ "$name" = -- ]; then rest=$item
    elif [[ $item == *=* ]]; then sets[$name]=$item
    else takes[$name]=$item
    fi
  done
  while [ $# -gt 0 ]; do
    if [ "$1" = -h ] || [ "$1" = --help ]; then
      script_help; exit 0
    elif [ "$1" = -- ] && [ -n "$rest" ]; then
      local -n rest_array=$rest
      shift; rest_array=("$@"); return
    elif [ -n "${takes[$1]:-}" ]; then
      [ $# -ge 2 ] || { echo "error: $1 needs a value (see --help)" >&2; exit 2; }
      printf -v "${takes[$1]}" '%s' "$2"; shift 2
    elif [ -n "${sets[$1]:-}" ]; then
      printf -v "${sets[$1]%%=*}" '%s' "${sets[$1]#*=}"; shift
    else
      echo "error: unknown option $1 (see --help)" >&2; exit 2
    fi
  done
}

# Checks that $data (--data) is a directory, and makes it absolute.
check_data() {
  [ -d "$data" ] || { echo "error: --data $data: no such directory" >&2; exit 2; }
  data=$(cd "$data" && pwd)
}

# The reference nets, one a line in bench/nets.tsv after its header: name, layer sizes, hidden
# activation, output activation, cost (tab-separated). Their names, comma-separated:
# The CPU's model name, with "AVX-512" or "AVX2" for the widest vectors it has.
cpu_name() {
  local name vectors=AVX2
  name=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)
  grep -qw avx512f /proc/cpuinfo && vectors=AVX-512
  echo "${name:-unknown} ($vectors)"
}

reference_nets() {
  awk -F'\t' 'NR > 1 && NF { printf "%s%s", sep, $1; sep = "," } END { print "" }' bench/nets.tsv
}

# Sets the array net_args to the `backprop train` options of reference net $1; an unknown name is an
# error (exit 2).
set_net_args() {
  local line
  line=$(awk -F'\t' -v net="$1" 'NR > 1 && $1 == net { print "--layers", $2, "--activation", $3, "--output", $4, "--cost", $5 }' bench/nets.tsv)
  [ -n "$line" ] || { echo "error: $1 is not a reference net (bench/nets.tsv has $(reference_nets))" >&2; exit 2; }
  read -ra net_args <<< "$line"
}

# Builds the solution in Release and names its two programs.
build_release() {
  local project
  for project in src/Coordinator src/Worker; do
    dotnet build "$project" -c Release -v quiet -nologo >/dev/null || { dotnet build "$project" -c Release -v quiet -nologo | grep -E "error" >&2; return 1; }
  done
  coordinator_dll=src/Coordinator/bin/Release/net10.0/backprop.dll
  worker_dll=src/Worker/bin/Release/net10.0/backprop-worker.dll
}

# Sets $logs to DIR ($1, created and kept) or to a temporary directory (removed at exit). At exit,
# every process whose pid the script adds to $pids is stopped.
open_logs() {
  if [ -n "$1" ]; then mkdir -p "$1"; logs=$1; keep=1; else logs=$(mktemp -d); keep=0; fi
  pids=()
  trap stop_and_clean EXIT
  trap 'exit 130' INT TERM
}
stop_and_clean() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "$keep" = 1 ] || rm -rf "$logs"
}

# Waits until FILE has a line matching REGEX; fails if PID exits first or after TIMEOUT seconds.
wait_for() {
  local file=$1 regex=$2 pid=$3 timeout=$4 waited=0
  until grep -qE "$regex" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      grep -qE "$regex" "$file" 2>/dev/null && return 0
      echo "error: process $pid ended before printing /$regex/; its log $file:" >&2; tail -5 "$file" >&2; exit 1
    fi
    if [ "$waited" -ge $((timeout * 10)) ]; then echo "error: no /$regex/ in $file after $timeout s" >&2; exit 1; fi
    sleep 0.1; waited=$((waited + 1))
  done
}

# Starts a coordinator (train --cluster on a free port of 127.0.0.1, $workers workers, $threads
# threads, $data, then the given options and the script's ${extra[@]}) and $workers worker processes.
# Sets coordinator_pid and worker_pids and adds them to pids; logs go to PREFIX.coordinator and
# PREFIX.worker<i>.
start_cluster() {
  local prefix=$1; shift
  dotnet "$coordinator_dll" train --cluster --host 127.0.0.1 --port 0 --workers "$workers" --threads "$threads" \
    --data "$data" "$@" ${extra[@]+"${extra[@]}"} > "$prefix.coordinator" 2>&1 &
  coordinator_pid=$!; pids+=("$coordinator_pid")
  wait_for "$prefix.coordinator" '^listening ' "$coordinator_pid" 120
  local port; port=$(sed -nE 's/^listening akka\.tcp:\/\/[^@]+@[^:]+:([0-9]+).*/\1/p' "$prefix.coordinator")
  worker_pids=()
  for ((w = 1; w <= workers; w++)); do
    dotnet "$worker_dll" --coordinator "127.0.0.1:$port" --data "$data" --threads "$threads" > "$prefix.worker$w" 2>&1 &
    worker_pids+=("$!"); pids+=("$!")
  done
}

# Waits for the coordinator and the workers; fails with the coordinator's log if it failed.
finish_cluster() {
  local prefix=$1 status=0
  wait "$coordinator_pid" || status=$?
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then echo "error: the coordinator exited with $status; $prefix.coordinator:" >&2; tail -5 "$prefix.coordinator" >&2; exit 1; fi
}
