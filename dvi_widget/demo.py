"""The demo: train a small CNN on the bundled MNIST digits, record every epoch, fit, report."""
from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASSES = [str(d) for d in range(10)]


def load_mnist(n_train: int = 8000, n_test: int = 2000, seed: int = 0):
    """The bundled 10,000 MNIST digits, shuffled with a fixed seed and split train/test.

    Returns (images uint8 (N, 28, 28), labels int64 (N,), split (N,) "train"/"test").
    """
    with resources.files("dvi_widget").joinpath("data/mnist10k.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        images, labels = data["images"], data["labels"].astype(np.int64)
    if n_train + n_test > len(images):
        raise ValueError(f"the bundled set has {len(images)} digits; asked for {n_train} + {n_test}")
    order = np.random.default_rng(seed).permutation(len(images))[: n_train + n_test]
    split = np.array(["train"] * n_train + ["test"] * n_test)
    return images[order], labels[order], split


class SmallCNN(nn.Module):
    """Two conv blocks, a 64-D penultimate layer (``features``), a linear head (``fc``)."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, dim), nn.ReLU())
        self.fc = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255.0).sub_(0.1307).div_(0.3081).unsqueeze(1)


def train_one_epoch(model: nn.Module, opt, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                    batch: int = 64) -> float:
    model.train()
    order = torch.randperm(len(x), generator=gen)
    total = 0.0
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total / len(x)


def run_demo(out: str | Path = "runs/mnist-demo", epochs: int = 8, n_train: int = 8000, n_test: int = 2000,
             seed: int = 0, fit_options: dict | None = None, quiet: bool = False):
    """Train, record and fit; returns the Visualization. Re-running resumes what is on disk."""
    from .engine.fitting import fit
    from .record.recorder import Recorder

    t0 = time.perf_counter()
    images, labels, split = load_mnist(n_train, n_test, seed)
    x, y = to_tensor(images), torch.from_numpy(labels)
    train = torch.from_numpy(split == "train")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = Path(out)
    rec = Recorder(out, inputs=x, labels=labels, classes=CLASSES, images=images, split=split, overwrite=True)
    for epoch in range(1, epochs + 1):
        loss = train_one_epoch(model, opt, x[train], y[train], gen)
        rec.capture(model, features=model.features, head=model.fc)
        if not quiet:
            print(f"epoch {epoch}: training loss {loss:.3f}", flush=True)
    rec.close()
    vis = fit(out, **(fit_options or {}))
    if not quiet:
        print(format_table(vis))
        print(f"stab_spearman over the run: {vis.summary['stab_spearman']:.3f}")
        print(f"run directory: {out.resolve()}  ({time.perf_counter() - t0:.0f} s)")
        print(f"open it: vis = dvi_widget.Visualization.load({str(out)!r}); vis.show()")
    return vis


def format_table(vis) -> str:
    cols = ["accuracy/train", "accuracy/test", "ppr/train", "ppr/test", "nn_rate@15",
            "boundary_nn_rate@15", "map_consistency", "trustworthiness@15"]
    head = "epoch " + " ".join(f"{c:>{max(len(c), 7)}}" for c in cols)
    lines = [head]
    for e, m in vis.metrics.items():
        lines.append(f"{e:>5} " + " ".join(f"{m.get(c, float('nan')):>{max(len(c), 7)}.3f}" for c in cols))
    return "\n".join(lines)
