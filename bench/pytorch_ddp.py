#!/usr/bin/env python3
"""PyTorch DistributedDataParallel on 127.0.0.1: the peer of `bench/cluster.sh`.

Starts --world ranks (default 2) with the gloo backend on 127.0.0.1, each computing with
--threads threads (default 1: torch.set_num_threads, openblas_set_num_threads and passive OpenMP
waiting, as bench/pytorch_bench.py does), and trains on Fashion-MNIST (max-scaled) with a global
batch of --batch samples (default 256: 128 per rank), plain SGD or momentum.

Two modes:

  throughput  for each net of --nets (default: every net of bench/nets.tsv): warm-up steps,
              then --repetitions timed windows of about --seconds each; prints the median samples/s
              over the windows (global batch × steps / wall time on rank 0) and, beside it, the
              global batch over the median single step time.
  accuracy    one net (--net, default 784-256-128-10): trains epoch by epoch (a seeded permutation
              per epoch, every rank takes its half of each global batch, the last short batch
              included), evaluates the test set after each epoch (each rank half, counts
              all-reduced) and stops at the first epoch whose test accuracy is >= --target (0.88).
              Prints the wall time from the first step to the end of that evaluation (evaluations
              included: the clock of `backprop train --target-accuracy`) and the epochs.

The nets start like ours (src/Shared/Networks/Initialization.cs): He normal weights for ReLU layers,
Glorot normal for logistic and softmax layers, zero biases (not the same bits: another generator).
Output: one JSON object per line on stdout; the first describes the setup.

  /usr/bin/python3 bench/pytorch_ddp.py --data /path/to/fashion-mnist
  /usr/bin/python3 bench/pytorch_ddp.py --data /path/to/fashion-mnist --mode accuracy \\
      --net 784-256-128-10 --optimizer momentum --lr 0.05 --target 0.88
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

# Before torch loads libgomp (see pytorch_bench.py); gloo on the loopback interface.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from pytorch_bench import HIDDEN, NETS, _OPENBLAS, find, read_idx, set_threads  # noqa: E402


def load(directory, part):
    images = read_idx(find(directory, f"{part}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{part}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)  # max scaling
    return x, torch.from_numpy(labels.astype(np.int64))


def build(name, seed):
    """The net, initialised as ours: He normal (ReLU layers), Glorot normal (others), zero biases."""
    sizes, hidden, _, _ = NETS[name]
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        linear = torch.nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        fan_in, fan_out = sizes[i], sizes[i + 1]
        std = (2.0 / fan_in) ** 0.5 if (not last and hidden == "relu") else (2.0 / (fan_in + fan_out)) ** 0.5
        with torch.no_grad():
            linear.weight.normal_(0.0, std)
            linear.bias.zero_()
        layers.append(linear)
        if not last:
            layers.append(HIDDEN[hidden]())
    return torch.nn.Sequential(*layers)


def loss_of(name, out, yb, eye):
    if NETS[name].cost == "quadratic":
        # The seed's C = ½‖σ(net) − y‖², averaged over the rank's samples (DDP then averages the ranks).
        return 0.5 * ((torch.sigmoid(out) - eye[yb]) ** 2).sum() / out.shape[0]
    return F.cross_entropy(out, yb)


def make_optimizer(model, args):
    momentum = args.momentum if args.optimizer == "momentum" else 0.0
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=momentum)


def local_part(index, rank, world):
    n = index.shape[0]
    return index[rank * n // world:(rank + 1) * n // world]


def throughput(rank, world, args, x, y):
    for name in args.nets.split(","):
        model = DistributedDataParallel(build(name, args.seed))
        optimizer = make_optimizer(model, args)
        eye = torch.eye(NETS[name].sizes[-1])
        generator = torch.Generator().manual_seed(args.seed)  # the same order on every rank
        order = torch.randperm(x.shape[0], generator=generator)
        position = 0

        def step():
            nonlocal order, position
            if position + args.batch > x.shape[0]:
                order = torch.randperm(x.shape[0], generator=generator)
                position = 0
            index = local_part(order[position:position + args.batch], rank, world)
            position += args.batch
            loss = loss_of(name, model(x[index]), y[index], eye)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # the gradients are all-reduced (averaged) here
            optimizer.step()

        for _ in range(3):
            step()
        # Size a window from a short probe on rank 0; every rank must run the same number of steps.
        started = time.perf_counter()
        for _ in range(5):
            step()
        probe = 5 * args.batch / (time.perf_counter() - started)
        steps = torch.tensor([max(5, int(args.seconds * probe / args.batch))])
        dist.broadcast(steps, 0)
        steps = int(steps.item())
        for _ in range(max(5, steps // 5)):
            step()
        windows, step_times = [], []
        for _ in range(args.repetitions):
            dist.barrier()
            started = time.perf_counter()
            for _ in range(steps):
                before = time.perf_counter()
                step()
                step_times.append(time.perf_counter() - before)
            windows.append(steps * args.batch / (time.perf_counter() - started))
        if rank == 0:
            print(json.dumps({"mode": "throughput", "net": name, "world": world, "threads": args.threads,
                              "batch": args.batch, "samples_per_second": round(statistics.median(windows), 1),
                              "step_median_samples_per_second": round(args.batch / statistics.median(step_times), 1),
                              "step_median_ms": round(1000 * statistics.median(step_times), 3),
                              "windows": [round(r, 1) for r in windows], "steps_per_window": steps}), flush=True)


def accuracy(rank, world, args, x, y, xt, yt):
    name = args.net
    model = DistributedDataParallel(build(name, args.seed))
    optimizer = make_optimizer(model, args)
    eye = torch.eye(NETS[name].sizes[-1])
    test_part = local_part(torch.arange(xt.shape[0]), rank, world)
    history = []
    dist.barrier()
    started = time.perf_counter()
    for epoch in range(1, args.max_epochs + 1):
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        model.train()
        epoch_started = time.perf_counter()
        for position in range(0, x.shape[0], args.batch):
            index = local_part(order[position:position + args.batch], rank, world)
            loss = loss_of(name, model(x[index]), y[index], eye)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        train_seconds = time.perf_counter() - epoch_started
        with torch.no_grad():
            model.eval()
            out = model.module(xt[test_part])
            counts = torch.tensor([(out.argmax(1) == yt[test_part]).sum().item(), test_part.shape[0]], dtype=torch.float64)
        dist.all_reduce(counts)
        test_accuracy = counts[0].item() / counts[1].item()
        since_start = time.perf_counter() - started
        history.append({"epoch": epoch, "test_accuracy": round(test_accuracy, 4), "since_start": round(since_start, 3),
                        "samples_per_second": round(x.shape[0] / train_seconds, 1)})
        if rank == 0:
            print(json.dumps({"mode": "accuracy-epoch", **history[-1]}), flush=True)
        if test_accuracy >= args.target:
            break
    if rank == 0:
        last = history[-1]
        print(json.dumps({"mode": "accuracy", "net": name, "world": world, "threads": args.threads, "batch": args.batch,
                          "optimizer": args.optimizer, "lr": args.lr, "momentum": args.momentum if args.optimizer == "momentum" else 0,
                          "seed": args.seed, "target": args.target, "reached": last["test_accuracy"] >= args.target,
                          "epochs": last["epoch"], "seconds": last["since_start"], "test_accuracy": last["test_accuracy"]}), flush=True)


def run(rank, world, port, args):
    set_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        x, y = load(args.data, "train")
        if args.mode == "throughput":
            throughput(rank, world, args, x, y)
        else:
            xt, yt = load(args.data, "t10k")
            accuracy(rank, world, args, x, y, xt, yt)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="directory with the Fashion-MNIST IDX files")
    parser.add_argument("--mode", choices=["throughput", "accuracy"], default="throughput")
    parser.add_argument("--world", type=int, default=2, help="ranks (processes)")
    parser.add_argument("--threads", type=int, default=1, help="threads per rank")
    parser.add_argument("--batch", type=int, default=256, help="global batch (split evenly over the ranks)")
    parser.add_argument("--optimizer", choices=["sgd", "momentum"], default="sgd")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="rendezvous port (default: a free one)")
    parser.add_argument("--nets", default=",".join(NETS), help="throughput: comma-separated net names")
    parser.add_argument("--repetitions", type=int, default=7, help="throughput: timed windows per net")
    parser.add_argument("--seconds", type=float, default=1.0, help="throughput: approximate length of a window")
    parser.add_argument("--net", default="784-256-128-10", help="accuracy: the net")
    parser.add_argument("--target", type=float, default=0.88, help="accuracy: test accuracy to reach")
    parser.add_argument("--max-epochs", type=int, default=50, help="accuracy: give up after this many epochs")
    args = parser.parse_args()
    for name in ([args.net] if args.mode == "accuracy" else args.nets.split(",")):
        if name not in NETS:
            sys.exit(f"error: unknown net {name} (known: {', '.join(NETS)})")

    blas = _OPENBLAS.openblas_get_config().decode() if _OPENBLAS is not None else "unknown"
    print(json.dumps({"torch": torch.__version__, "backend": "gloo", "world": args.world, "threads": args.threads,
                      "batch": args.batch, "blas": blas, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)
    mp.spawn(run, args=(args.world, args.port or free_port(), args), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
