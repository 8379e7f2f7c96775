"""Helpers shared by the engine tests (imported by name: conftest modules are not importable reliably)."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import torch

import dvi_widget as dvi
from dvi_widget.demo import CLASSES, SmallCNN

# Reduced fit settings: the suite checks behaviour, not the last bit of quality.
FAST_FIT = dict(steps_first=200, steps=80, layout_epochs_first=150, layout_epochs=30, grid=64)
# tiny fit settings for runs whose projection quality does not matter (files, resume, errors)
TINY_FIT = dict(steps_first=30, steps=10, layout_epochs_first=20, layout_epochs=5, grid=16, batch_size=128)
SMALL_TRAIN, SMALL_TEST, SMALL_EPOCHS = 800, 200, 3

__all__ = ["CLASSES", "FAST_FIT", "TINY_FIT", "SMALL_TRAIN", "SMALL_TEST", "SMALL_EPOCHS", "make_cnn",
           "record_features", "snapshot", "kill_after_first_fit"]


def make_cnn(seed: int = 0) -> SmallCNN:
    """The demo's SmallCNN with seeded weights (the global random state is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN()


def record_features(path, feats_by_epoch, labels, head, classes=None, split=None, **kw):
    """A features-only run: one capture per (epoch, (N, D) array)."""
    with dvi.Recorder(path, labels=labels, classes=classes, split=split, **kw) as rec:
        for epoch, H in feats_by_epoch:
            rec.capture(features=H, head=head, epoch=epoch)
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every fitted file under ``folder`` with its modification time and content.

    (fits/config.json, the options, may be rewritten with the same content.)"""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "config.json"}


def kill_after_first_fit(proc: subprocess.Popen, run: Path, timeout: float) -> None:
    """SIGKILL ``proc``, a process fitting ``run``, as soon as its first epoch's fit folder exists."""
    try:
        deadline = time.monotonic() + timeout
        while not (Path(run) / "fits" / "000001").exists():
            assert proc.poll() is None, "the fit ended before it could be killed"
            assert time.monotonic() < deadline, "epoch 1 was never fitted"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
