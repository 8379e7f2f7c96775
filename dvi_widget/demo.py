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
    if n_train + n_test > len(images) or n_train < 1 or n_test < 0:
        from .errors import DVIError
        raise DVIError(f"the bundled set has {len(images)} digits; asked for {n_train} training + {n_test} test")
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
             seed: int = 0, fit_options: dict | None = None, quiet: bool = False, fresh: bool = False,
             page: bool = True):
    """Train, record and fit; write ``OUT/map.html``; return the Visualization.

    Re-running resumes what is on disk: epochs already recorded are not recorded again
    (training is seeded, so the model is retrained to the same state without capturing),
    and only unfitted epochs are fitted. A folder that is not a dvi_widget run is never
    touched; ``fresh=True`` starts afresh, removing the run in ``out`` (only ever a run).
    """
    from .engine.fitting import fit
    from .engine.threads import fit_threads
    from .errors import DVIError
    from .record.recorder import Recorder

    if epochs < 1:
        raise DVIError(f"epochs must be at least 1, got {epochs}")
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
    existed = (out / "meta.json").exists()
    try:
        rec = Recorder(out, inputs=x, labels=labels, classes=CLASSES, images=images, split=split,
                       overwrite=fresh, progress=not quiet)
    except DVIError as e:
        if existed and not fresh and "recorded with" in str(e):
            raise DVIError(f"{out} holds a demo run made with other settings ({e}); pass --fresh "
                           f"(fresh=True) to start afresh there, or --out another folder") from None
        raise
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    # Training and capture follow the fit's thread rule (engine/threads.py): torch's default of one
    # intra-op thread per core made each training epoch ~40x slower on a busy 2-core machine
    # (1.6 s of CPU per epoch with 1 thread; 64-114 s of wall time with 2 threads under load).
    with rec, fit_threads():
        done = set(rec.epochs)
        if existed and not fresh:
            say(f"resuming the demo run in {out}: epochs {sorted(done) or 'none'} already recorded "
                f"(--fresh starts afresh)")
        elif fresh and existed:
            say(f"starting afresh in {out}")
        todo = [e for e in range(1, epochs + 1) if e not in done]
        last = max(todo) if todo else 0
        for epoch in range(1, last + 1):
            loss = train_one_epoch(model, opt, x[train], y[train], gen)
            if epoch in done:
                say(f"epoch {epoch}: training loss {loss:.3f} (already recorded)")
                continue
            rec.capture(model, features=model.features, head=model.fc, epoch=epoch)
            say(f"epoch {epoch}: training loss {loss:.3f}")
    vis = fit(out, progress=not quiet, **(fit_options or {}))
    html = None
    if page:
        from .outputs.export import export_html
        html = export_html(vis, out / "map.html")
    if not quiet:
        print(format_table(vis))
        print(f"stab_spearman over the run: {vis.summary['stab_spearman']:.3f}")
        print(f"run directory: {out.resolve()}  ({time.perf_counter() - t0:.0f} s)")
        if html is not None:
            print(f"offline page: {Path(html).resolve().as_uri()}  (open it in any browser; no server needed)")
        print("in a notebook: vis = dvi_widget.Visualization.load(" + repr(str(out)) + "); vis.show()"
              "   (no Jupyter yet? pip install jupyterlab && jupyter lab)")
    return vis


def format_table(vis) -> str:
    cols = ["accuracy/train", "accuracy/test", "ppr/train", "ppr/test", "nn_rate@15",
            "boundary_nn_rate@15", "map_consistency", "trustworthiness@15"]
    head = "epoch " + " ".join(f"{c:>{max(len(c), 7)}}" for c in cols)
    lines = [head]
    for e, m in vis.metrics.items():
        lines.append(f"{e:>5} " + " ".join(f"{m.get(c, float('nan')):>{max(len(c), 7)}.3f}" for c in cols))
    return "\n".join(lines)
