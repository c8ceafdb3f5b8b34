#!/usr/bin/env python3
"""nabla against PyTorch's CPU path (oneDNN) on issue 22's models, paired, full MNIST,
float32, Adam lr 0.001, in-order batches, both on the same threads:

  cnn  "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Conv2d(64, 3, padding=1), ReLU,
        MaxPool2d(2), Flatten, Linear(128), ReLU, Dropout(0.25), Linear(10)", batch 64
  bnmlp "Linear(256), BatchNorm1d, ReLU, Dropout(0.25), Linear(10)", batch 64

For each repeat, nabla (`nabla train --epochs 1`, the training seconds of its epoch
from its log) then PyTorch (one epoch of the same model, timed the same way: training
only, evaluation excluded) run as separate processes; the ratio is taken within each
pair and the medians are printed with the CPU flags and both BLAS kernels.

    python3 scripts/bench_layers.py [cnn|bnmlp ...]   # REPEATS=3 THREADS=2 NABLA=path

As scripts/bench.sh, nabla runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (so
OpenBLAS picks its kernel for this CPU, printed below) unless KEEP_OPENBLAS_ENV=1.
Needs torch and numpy (not installed by CI).
"""
import gzip
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "cnn": "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Conv2d(64, 3, padding=1), ReLU, "
           "MaxPool2d(2), Flatten, Linear(128), ReLU, Dropout(0.25), Linear(10)",
    "bnmlp": "Linear(256), BatchNorm1d, ReLU, Dropout(0.25), Linear(10)",
}
BATCH = 64


def torch_model(name):
    from torch import nn
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
                         nn.Dropout(0.25), nn.Linear(256, 10))


def idx(path):
    import numpy as np
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def torch_epoch(name, threads):
    """One training epoch in this process; prints its seconds."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mnist = ROOT / "data" / "mnist"
    x = torch.from_numpy(idx(mnist / "train-images-idx3-ubyte.gz").copy())
    y = torch.from_numpy(idx(mnist / "train-labels-idx1-ubyte.gz").astype("int64"))
    model = torch_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for start in range(0, len(y), BATCH):
        # The 8-bit pixels are converted per batch, as nabla does.
        batch = x[start:start + BATCH].unsqueeze(1).float().div_(255)
        optimizer.zero_grad()
        loss = loss_fn(model(batch), y[start:start + BATCH])
        loss.backward()
        optimizer.step()
    print(f"{time.perf_counter() - started:.3f}")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--torch":
        torch_epoch(sys.argv[2], int(sys.argv[3]))
        return
    names = sys.argv[1:] or list(MODELS)
    threads = int(os.environ.get("THREADS", os.cpu_count()))
    repeats = int(os.environ.get("REPEATS", "3"))
    nabla = os.environ.get("NABLA", str(ROOT / "target" / "release" / "nabla"))
    nabla_env = dict(os.environ)
    if not os.environ.get("KEEP_OPENBLAS_ENV"):
        nabla_env.pop("OPENBLAS_CORETYPE", None)
        nabla_env.pop("OPENBLAS_L2_SIZE", None)
    probe = subprocess.run([nabla, "train", "--epochs", "1", "--train-rows", "50", "--test-rows", "10",
                            "--quiet"], env={**nabla_env, "OPENBLAS_VERBOSE": "2"},
                           capture_output=True, text=True)
    kernel = next((line.split(":", 1)[1].strip() for line in (probe.stdout + probe.stderr).splitlines()
                   if line.startswith("Core:")), "?")
    flags = [f for f in open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
             if f in ("avx2", "avx512f", "avx512_bf16", "fma", "amx_tile")]
    import torch
    print(f"CPU flags: {' '.join(flags)}; torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}, mkldnn {torch.backends.mkldnn.is_available()}; "
          f"nabla's OpenBLAS kernel {kernel}; threads {threads}")
    for name in names:
        pairs = []
        for _ in range(repeats):
            log = Path(f"/tmp/bench_layers_{os.getpid()}.csv")
            subprocess.run(
                [nabla, "train", "--dataset", "mnist", "--layers", MODELS[name], "--epochs", "1",
                 "--batch-size", str(BATCH), "--optimizer", "adam", "--lr", "0.001",
                 "--threads", str(threads), "--quiet", "--log", str(log)],
                capture_output=True, text=True, check=True, env=nabla_env)
            header, row = log.read_text().strip().split("\n")[:2]
            ours = float(dict(zip(header.split(","), row.split(",")))["train_seconds"])
            log.unlink()
            theirs = float(subprocess.run(
                [sys.executable, __file__, "--torch", name, str(threads)],
                capture_output=True, text=True, check=True).stdout.strip())
            pairs.append((ours, theirs))
            print(f"{name}: nabla {ours:.2f} s/epoch, PyTorch {theirs:.2f} s/epoch, "
                  f"PyTorch/nabla {theirs / ours:.2f}", flush=True)
        print(f"{name} median: nabla {statistics.median(p[0] for p in pairs):.2f} s, "
              f"PyTorch {statistics.median(p[1] for p in pairs):.2f} s, "
              f"speed-up {statistics.median(p[1] / p[0] for p in pairs):.2f}x")


if __name__ == "__main__":
    main()
