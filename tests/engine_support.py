"""Helpers shared by the engine tests (imported by name: conftest modules are not importable reliably)."""
from __future__ import annotations

import torch

import dvi_widget as dvi
from dvi_widget.demo import CLASSES, SmallCNN

# Reduced fit settings: the suite checks behaviour, not the last bit of quality.
FAST_FIT = dict(steps_first=200, steps=80, layout_epochs_first=150, layout_epochs=30, grid=64)
# tiny fit settings for runs whose projection quality does not matter (files, resume, errors)
TINY_FIT = dict(steps_first=30, steps=10, layout_epochs_first=20, layout_epochs=5, grid=16, batch_size=128)
SMALL_TRAIN, SMALL_TEST, SMALL_EPOCHS = 800, 200, 3

__all__ = ["CLASSES", "FAST_FIT", "TINY_FIT", "SMALL_TRAIN", "SMALL_TEST", "SMALL_EPOCHS", "make_cnn",
           "record_features"]


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
