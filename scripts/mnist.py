"""Loads MNIST from the IDX .gz files in data/mnist (pixels scaled to [0,1]); for numpy_ref.py."""
import gzip, os, struct
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.environ.get("MNIST_DIR", os.path.join(HERE, "..", "data", "mnist"))

def _read(name):
    with gzip.open(os.path.join(DIR, name), "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)

def load(n_train=None, n_test=None, dtype=np.float32):
    xtr = _read("train-images-idx3-ubyte.gz").reshape(-1, 784)[:n_train].astype(dtype) / 255
    ytr = _read("train-labels-idx1-ubyte.gz")[:n_train].astype(np.int64)
    xte = _read("t10k-images-idx3-ubyte.gz").reshape(-1, 784)[:n_test].astype(dtype) / 255
    yte = _read("t10k-labels-idx1-ubyte.gz")[:n_test].astype(np.int64)
    return xtr, ytr, xte, yte
