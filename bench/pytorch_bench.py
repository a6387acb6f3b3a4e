#!/usr/bin/env python3
"""PyTorch side of the benchmark program's `step` command: the same nets, the same step, the same timing.

The nets are the reference nets of bench/nets.tsv (name, sizes, hidden activation, output activation,
cost), which the C# benchmarks read too.

One training step = gather a batch of 256 Fashion-MNIST samples from the (max-scaled) training
set by a random permutation, forward, loss, backward, plain SGD update.

Standalone: for each net and thread count, warm-up steps, then several timed repetitions of a fixed
number of steps; the median samples/s is reported. Prints one JSON object per line, e.g.
  {"net": "784-30-10", "threads": 1, "samples_per_second": 312000.0, "repetitions": [...]}
after a first line {"torch": "1.13.0", "blas": ..., ...} that also says which BLAS torch computes
with and whether the script can set its thread count.

--serve (how bench/Backprop.Benchmarks/Steps/PyTorchPeer.cs uses it): after the first line, reads
requests
  {"net": "784-30-10", "threads": 1, "steps": 50}
one per line on stdin, runs that many steps of the net (its model kept from request to request, so
the first requests are the warm-up) and answers
  {"samples_per_second": ..., "threads": 1, "blas_threads": 1}
(the thread counts torch and OpenBLAS ran with; blas_threads is null when the script cannot set
them). The caller alternates these repetitions with its own, so both sides see the same machine.
"""
import argparse
import collections
import ctypes
import gzip
import json
import os
import statistics
import sys
import time

# libgomp's threads spin after each parallel region by default; on a machine whose cores are busy
# with anything else (the OpenBLAS threads, another process) that costs PyTorch 10x at 2 threads.
# Passive waiting is PyTorch's better setting here and changes nothing at 1 thread. Must be set
# before torch loads libgomp; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F


def mapped_libraries():
    """The files mapped into this process (from /proc/self/maps; empty elsewhere than Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return {fields[-1] for fields in (line.split() for line in maps) if len(fields) >= 6}
    except OSError:
        return set()


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def torch_sgemm():
    """The library whose sgemm_ torch's products call (the first that has it in libtorch_cpu's
    dependencies: Debian's libblas.so.3, which may be OpenBLAS's or the reference BLAS), or None."""
    libtorch = next((p for p in mapped_libraries() if os.path.basename(p).startswith("libtorch_cpu")), None)
    if libtorch is None:
        return None
    try:
        address = ctypes.cast(ctypes.CDLL(libtorch).sgemm_, ctypes.c_void_p)
        info = _DlInfo()
        if ctypes.CDLL(None).dladdr(address, ctypes.byref(info)) == 0:
            return None
        return os.path.realpath(info.dli_fname.decode())
    except (OSError, AttributeError):
        return None


TORCH_SGEMM = torch_sgemm()
TORCH_MKL = torch.backends.mkl.is_available()
_MAPPED_BY_TORCH = mapped_libraries()

# torch.set_num_threads does not reach OpenBLAS (Debian's torch uses the system BLAS, whose pthread
# build starts one thread per core): set its thread count too, or "1 thread" runs the GEMMs on all.
try:
    _OPENBLAS = ctypes.CDLL("libopenblas.so.0")
    _OPENBLAS.openblas_get_config.restype = ctypes.c_char_p
except OSError:
    _OPENBLAS = None
# Whether that reaches torch's products: torch's sgemm_ is OpenBLAS's, and the OpenBLAS loaded here is
# one that torch had mapped already (loading it mapped nothing new). Not so when torch runs on another
# BLAS, the reference one included, even with OpenBLAS loaded beside it (Debian's LAPACK brings it).
OPENBLAS_IS_TORCH_BLAS = (_OPENBLAS is not None and TORCH_SGEMM is not None and "openblas" in TORCH_SGEMM
                          and mapped_libraries() == _MAPPED_BY_TORCH)


def set_threads(threads):
    torch.set_num_threads(threads)
    if _OPENBLAS is not None:
        _OPENBLAS.openblas_set_num_threads(threads)


def blas_threads():
    """The thread count of torch's OpenBLAS now, or None when the script cannot tell (MKL, another BLAS)."""
    return _OPENBLAS.openblas_get_num_threads() if OPENBLAS_IS_TORCH_BLAS else None


Net = collections.namedtuple("Net", "sizes hidden output cost")

# The hidden activations and (output, cost) pairs that build() and the steps below implement.
HIDDEN = {"logistic": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
HEADS = {("logistic", "quadratic"), ("softmax", "cross-entropy")}


def read_nets(path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "nets.tsv")):
    """The reference nets of bench/nets.tsv, by name."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not rows or [field.strip() for field in rows[0]] != ["name", "sizes", "hidden", "output", "cost"]:
        sys.exit(f"error: {path}: expected the header line name, sizes, hidden, output, cost (tab-separated)")
    nets = {}
    for row in rows[1:]:
        if len(row) != 5:
            sys.exit(f"error: {path}: expected 5 tab-separated fields, not {row}")
        name, sizes, hidden, output, cost = (field.strip() for field in row)
        if hidden not in HIDDEN or (output, cost) not in HEADS:
            sys.exit(f"error: {path}: {name}: the PyTorch peers run {', '.join(HIDDEN)} hidden layers with a logistic output "
                     f"and the quadratic cost or a softmax output and cross-entropy, not {hidden}, {output}, {cost}")
        nets[name] = Net([int(s) for s in sizes.split(",")], hidden, output, cost)
    return nets


NETS = read_nets()


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    sys.exit(f"error: {stem}[.gz] not found in {directory}")


def load(directory):
    images = read_idx(find(directory, "train-images-idx3-ubyte"))
    labels = read_idx(find(directory, "train-labels-idx1-ubyte"))
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)  # max scaling
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build(sizes, hidden):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(HIDDEN[hidden]())
    return torch.nn.Sequential(*layers)


def make_step(name, x, y, batch):
    """One training step of the named net, as a function (the model and the batch order live in it)."""
    sizes, hidden, _, cost = NETS[name]
    torch.manual_seed(1)
    model = build(sizes, hidden)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    eye = torch.eye(sizes[-1])
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(x.shape[0], generator=generator)
    position = 0

    def step():
        nonlocal position, order
        if position + batch > x.shape[0]:
            order = torch.randperm(x.shape[0], generator=generator)
            position = 0
        index = order[position:position + batch]
        position += batch
        xb, yb = x[index], y[index]
        out = model(xb)
        if cost == "quadratic":
            # The seed's C = ½‖σ(net) − y‖², averaged over the batch.
            loss = 0.5 * ((torch.sigmoid(out) - eye[yb]) ** 2).sum() / batch
        else:
            loss = F.cross_entropy(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def timed(step, steps, batch):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def measure(name, x, y, threads, batch, warmup, repetitions, steps):
    set_threads(threads)
    step = make_step(name, x, y, batch)
    for _ in range(warmup):
        step()
    rates = [timed(step, steps, batch) for _ in range(repetitions)]
    return statistics.median(rates), rates


def serve(x, y, batch):
    steps_by_key = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        name, threads, steps = request["net"], int(request["threads"]), int(request["steps"])
        if name not in NETS or threads < 1 or steps < 1:
            sys.exit(f"error: bad request {line.strip()}")
        set_threads(threads)
        key = (name, threads)
        if key not in steps_by_key:
            steps_by_key[key] = make_step(name, x, y, batch)
        rate = timed(steps_by_key[key], steps, batch)
        print(json.dumps({"samples_per_second": round(rate, 1), "threads": torch.get_num_threads(),
                          "blas_threads": blas_threads()}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="directory with the Fashion-MNIST IDX files")
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated net names")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated thread counts")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="approximate time of one repetition")
    parser.add_argument("--serve", action="store_true", help="answer timing requests from stdin (see above)")
    args = parser.parse_args()

    x, y = load(args.data)
    blas = _OPENBLAS.openblas_get_config().decode() if _OPENBLAS is not None else "unknown"
    print(json.dumps({"torch": torch.__version__, "cpu_count": os.cpu_count(), "batch": args.batch, "blas": blas,
                      "torch_sgemm": TORCH_SGEMM, "mkl": TORCH_MKL, "openblas_is_torch_blas": OPENBLAS_IS_TORCH_BLAS,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)
    if args.serve:
        serve(x, y, args.batch)
        return
    for name in args.nets.split(","):
        for threads in sorted({int(t) for t in args.threads.split(",")}):
            # Size a repetition from a short probe, so every net takes about the same time.
            probe, _ = measure(name, x, y, threads, args.batch, warmup=3, repetitions=1, steps=5)
            steps = max(5, int(args.seconds * probe / args.batch))
            median, rates = measure(name, x, y, threads, args.batch, warmup=max(5, steps // 5),
                                    repetitions=args.repetitions, steps=steps)
            print(json.dumps({"net": name, "threads": threads, "samples_per_second": round(median, 1),
                              "repetitions": [round(r, 1) for r in rates], "steps": steps}), flush=True)


if __name__ == "__main__":
    main()
