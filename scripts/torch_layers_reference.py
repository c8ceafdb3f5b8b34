#!/usr/bin/env python3
"""PyTorch's side of tests/suite/layers_parity.rs (issue 22's layers).

    NABLA_TORCH_FIXTURES=/tmp/tl cargo test --test tests layers_parity
    python3 scripts/torch_layers_reference.py /tmp/tl tests/fixtures/torch_layers

For each case: builds the network as PyTorch writes it, loads nabla's initial model
with load_state_dict(strict=True), trains one epoch of plain SGD in float64 over the
same in-order batches (dropout replaced by nabla's masks), and writes the trained
state_dict (safetensors.torch.save_file) and the losses and evaluation-mode logits.
Needs torch, numpy and safetensors.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from safetensors.torch import load_file, save_file

torch.set_default_dtype(torch.float64)
ROWS, BATCH, LR = 32, 8, 0.1


class MaskedDropout(nn.Module):
    """nn.Dropout with given masks (0 or 1/(1-p)) in training, the identity in eval."""

    def __init__(self, masks):
        super().__init__()
        self.masks = masks

    def forward(self, x):
        return x * self.masks.pop(0) if self.training else x


def cases(masks):
    return {
        "cnn": ((2, 8, 8), 5, nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0)), nn.BatchNorm2d(6),
            nn.LeakyReLU(0.1), nn.AvgPool2d(2, stride=1), nn.Flatten(),
            MaskedDropout(masks), nn.Linear(12, 5))),
        "mlp": ((10,), 3, nn.Sequential(
            nn.Linear(10, 12), nn.BatchNorm1d(12), nn.GELU(), MaskedDropout(masks),
            nn.Linear(12, 10), nn.LayerNorm(10), nn.SiLU(), nn.Linear(10, 8), nn.ELU(alpha=0.7),
            nn.Linear(8, 6), nn.GELU(approximate="tanh"), nn.Linear(6, 5), nn.Tanh(),
            nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.Identity(), nn.Linear(4, 3))),
        "strided": ((1, 9, 9), 4, nn.Sequential(
            nn.Conv2d(1, 3, 3, stride=2, padding=1, bias=False), nn.ELU(),
            nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten(), nn.LayerNorm(27),
            nn.Linear(27, 4))),
    }


def data(shape, classes):
    width = int(np.prod(shape))
    i = np.arange(ROWS)[:, None]
    j = np.arange(width)[None, :]
    x = ((i * 7919 + j * 104729) % 1000) / 1000.0 - 0.5
    y = (31 * np.arange(ROWS)) % classes
    return torch.from_numpy(x).reshape(ROWS, *shape), torch.from_numpy(y)


def main(inputs, outputs):
    inputs, outputs = Path(inputs), Path(outputs)
    outputs.mkdir(parents=True, exist_ok=True)
    for name in cases([]):
        masks_file = inputs / f"{name}.masks.npz"
        masks = []
        if masks_file.exists():
            archive = np.load(masks_file)
            masks = [torch.from_numpy(archive[str(k)]) for k in range(len(archive.files))]
        shape, classes, net = cases(masks)[name]
        result = net.load_state_dict(load_file(inputs / f"{name}.init.safetensors"), strict=True)
        print(name, result)
        x, y = data(shape, classes)
        optimizer = torch.optim.SGD(net.parameters(), lr=LR)
        losses = []
        net.train()
        for start in range(0, ROWS, BATCH):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x[start:start + BATCH]), y[start:start + BATCH])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert not masks, f"{name}: {len(masks)} masks left over"
        net.eval()
        with torch.no_grad():
            logits = net(x).numpy()
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, outputs / f"{name}.trained.safetensors")
        np.savez(outputs / f"{name}.outputs.npz", losses=np.array(losses), logits=logits)
        print(name, "losses", losses)


if __name__ == "__main__":
    main(*sys.argv[1:3])
