# What the bench scripts share. Each sources this right after `cd`-ing to the repository root:
#   . bench/common.sh

# Fashion-MNIST: $BACKPROP_DATASETS/fashion-mnist if that is set, else ../shared/datasets/fashion-mnist
# beside the checkout.
default_data=${BACKPROP_DATASETS:+$BACKPROP_DATASETS/fashion-mnist}
[ -n "$default_data" ] || default_data="$PWD/../shared/datasets/fashion-mnist"

# Builds the solution in Release and names its two programs.
build_release() {
  dotnet build Backprop.Distributed.sln -c Release -v quiet -nologo >/dev/null
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

# The `backprop train` options of a reference net (docs/engine.md), on one line.
reference_net_args() {
  case "$1" in
    784-30-10) echo "--layers 784,30,10 --activation logistic --cost quadratic" ;;
    784-256-128-10) echo "--layers 784,256,128,10 --activation relu --cost cross-entropy" ;;
    784-1024-1024-10) echo "--layers 784,1024,1024,10 --activation relu --cost cross-entropy" ;;
    *) echo "error: unknown net $1" >&2; exit 2 ;;
  esac
}
