"""nabla's training algorithm in vectorised NumPy, for side-by-side timing (scripts/bench.sh).

Same work as `nabla train --dataset mnist --activation relu`: in-order batches, batch-mean
softmax cross-entropy gradient, plain gradient descent, no input gradient for the first
layer. Products go into preallocated arrays where NumPy allows it (`np.matmul(out=)`).

usage: python3 scripts/numpy_mlp.py MNIST_DIR BATCH EPOCHS [HIDDEN [LR [f32|f64]]]
prints one line: key=value pairs (seconds per epoch of training only, peak RSS, accuracy).
"""
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = struct.unpack(">" + "I" * data[3], data[4 : 4 + 4 * data[3]])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def main():
    mnist_dir, batch, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hidden = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    lr = float(sys.argv[5]) if len(sys.argv) > 5 else 0.01
    dtype = np.float64 if len(sys.argv) > 6 and sys.argv[6] == "f64" else np.float32
    pixels = read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz")).reshape(-1, 784)
    labels = read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x_all = pixels.astype(dtype) / dtype(255)
    rows = len(labels)
    rng = np.random.default_rng(10701)
    w1 = (rng.uniform(-1, 1, (hidden, 784)) / np.sqrt(784)).astype(dtype)
    w2 = (rng.uniform(-1, 1, (10, hidden)) / np.sqrt(hidden)).astype(dtype)
    b1, b2 = np.zeros(hidden, dtype), np.zeros(10, dtype)
    h = np.empty((batch, hidden), dtype)
    z = np.empty((batch, 10), dtype)
    dw1, dw2 = np.empty_like(w1), np.empty_like(w2)
    dh = np.empty((batch, hidden), dtype)
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for s in range(0, rows, batch):
            x, y = x_all[s : s + batch], labels[s : s + batch]
            n = len(y)
            hn, zn, dhn = h[:n], z[:n], dh[:n]
            np.matmul(x, w1.T, out=hn)
            hn += b1
            np.maximum(hn, 0, out=hn)
            np.matmul(hn, w2.T, out=zn)
            zn += b2
            zn -= zn.max(axis=1, keepdims=True)
            np.exp(zn, out=zn)
            zn /= zn.sum(axis=1, keepdims=True)
            zn[np.arange(n), y] -= 1
            zn /= n
            np.matmul(zn.T, hn, out=dw2)
            db2 = zn.sum(axis=0)
            np.matmul(zn, w2, out=dhn)
            dhn *= hn > 0
            np.matmul(dhn.T, x, out=dw1)
            db1 = dhn.sum(axis=0)
            w2 -= lr * dw2
            b2 -= lr * db2
            w1 -= lr * dw1
            b1 -= lr * db1
        epoch_seconds.append(time.perf_counter() - start)
    logits = np.maximum(x_all @ w1.T + b1, 0) @ w2.T + b2
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = sorted(epoch_seconds)[len(epoch_seconds) // 2] if epochs % 2 else float(np.median(epoch_seconds))
    print(f"seconds_per_epoch={seconds:.4f} peak_mb={peak_mb:.0f} train_acc={accuracy:.4f} numpy={np.__version__}")


main()
