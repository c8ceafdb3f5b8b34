"""(The team's NumPy yardstick, copied from shared/bench/numpy_ref.py for scripts/bench.sh;
it reads data/mnist through scripts/mnist.py, or $MNIST_DIR.)

The seed's algorithm in vectorised NumPy: batch GD, no shuffle, fused softmax-CE.
usage: numpy_ref.py N_TRAIN HIDDEN(e.g. 256 or 384,256) ACT BATCH EPOCHS LR DTYPE [eval]
With the optional word `eval`, train and test sets are evaluated after every epoch, as the
assignment's train_network does, and the wall time of the whole run is printed too."""
import sys, time
import numpy as np
from mnist import load

def main():
    start = time.perf_counter()
    n, hidden, act, bs, epochs, lr, dt = sys.argv[1:8]
    every_epoch = sys.argv[8:9] == ["eval"]
    n = int(n) if n != "all" else None
    hidden = [int(h) for h in hidden.split(",")]
    bs, epochs, lr = int(bs), int(epochs), float(lr)
    dtype = np.float32 if dt == "f32" else np.float64
    xtr, ytr, xte, yte = load(n, 1000 if n else None, dtype)
    rng = np.random.default_rng(10701)
    sizes = [784] + hidden + [10]
    Ws = [(rng.uniform(-1, 1, (o, i)) / np.sqrt(i)).astype(dtype) for i, o in zip(sizes, sizes[1:])]
    bs_ = [np.zeros(o, dtype) for o in sizes[1:]]
    def fwd(x):
        hs = [x]
        for l, (W, b) in enumerate(zip(Ws, bs_)):
            a = hs[-1] @ W.T + b
            if l < len(Ws) - 1:
                a = 1 / (1 + np.exp(-a)) if act == "sigmoid" else np.maximum(a, 0)
            hs.append(a)
        return hs
    def stats(x, y):
        lo = fwd(x)[-1]
        lo = lo - lo.max(1, keepdims=True)
        lse = np.log(np.exp(lo).sum(1))
        return float(np.mean(lse - lo[np.arange(len(y)), y])), float(np.mean(lo.argmax(1) == y))
    t0 = time.perf_counter()
    for e in range(epochs):
        for s in range(0, len(xtr), bs):
            x, y = xtr[s:s + bs], ytr[s:s + bs]
            hs = fwd(x)
            lo = hs[-1] - hs[-1].max(1, keepdims=True)
            p = np.exp(lo); p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            g = p / len(y)
            for l in range(len(Ws) - 1, -1, -1):
                dW = g.T @ hs[l]; db = g.sum(0)
                if l > 0:
                    g = g @ Ws[l]
                    h = hs[l]
                    g = g * h * (1 - h) if act == "sigmoid" else g * (h > 0)
                Ws[l] -= lr * dW; bs_[l] -= lr * db
        if every_epoch:
            t_train = time.perf_counter()
            stats(xtr, ytr); stats(xte, yte)
            t0 += time.perf_counter() - t_train  # keep s/epoch the training time alone
    t = time.perf_counter() - t0
    trl, tra = stats(xtr, ytr); tel, tea = stats(xte, yte)
    print(f"numpy-{dt} n={len(xtr)} hidden={hidden} {act} bs={bs} epochs={epochs}: {t/epochs:.4f} s/epoch  train_acc={tra:.4f} test_acc={tea:.4f} train_loss={trl:.4f}"
          + (f"  wall={time.perf_counter() - start:.2f} s with per-epoch evaluation" if every_epoch else ""))

main()
