"""Shared fixtures: small real data and one fitted small MNIST run shared by the whole suite.

``small_run`` (session scope) is a fitted :class:`dvi_widget.Visualization` of a tiny real
MNIST run: 1,000 bundled digits (800 train / 200 test), the demo's SmallCNN trained for 3
epochs and captured after each, fitted with reduced steps. Tests that change a run work on
a copy (``small_run_copy``), never on the shared one. The browser tests use it too.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pytest
import torch

import dvi_widget as dvi
from dvi_widget.demo import load_mnist, to_tensor, train_one_epoch
from engine_support import (CLASSES, FAST_FIT, SMALL_EPOCHS, SMALL_TEST, SMALL_TRAIN, TINY_FIT, make_cnn,
                            record_features)


@pytest.fixture(scope="session")
def mnist_small():
    """1,000 real MNIST digits: (x float (N,1,28,28), labels int64, split, images uint8 (N,28,28))."""
    images, labels, split = load_mnist(SMALL_TRAIN, SMALL_TEST, seed=0)
    return to_tensor(images), labels, split, images


@pytest.fixture(scope="session")
def trained_cnn(mnist_small):
    """A SmallCNN trained for one epoch on the 800 training digits (eval mode off: as after training)."""
    x, labels, split, _ = mnist_small
    model = make_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = torch.from_numpy(split == "train")
    train_one_epoch(model, opt, x[train], torch.from_numpy(labels)[train], torch.Generator().manual_seed(0))
    return model


@pytest.fixture(scope="session")
def small_run_path(tmp_path_factory, mnist_small):
    """Path of the recorded and fitted small MNIST run (do not modify: copy it)."""
    x, labels, split, images = mnist_small
    path = tmp_path_factory.mktemp("small_run") / "mnist-small"
    model = make_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = torch.from_numpy(split == "train")
    y = torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(0)
    with dvi.Recorder(path, inputs=x, labels=labels, classes=CLASSES, images=images, split=split) as rec:
        for _ in range(SMALL_EPOCHS):
            train_one_epoch(model, opt, x[train], y[train], gen)
            rec.capture(model, features=model.features, head=model.fc)
    dvi.fit(path, progress=False, **FAST_FIT)
    return path


@pytest.fixture(scope="session")
def small_run(small_run_path):
    """A fitted ``dvi.Visualization`` of the small MNIST run (epochs 1, 2, 3; N = 1,000)."""
    vis = dvi.Visualization(small_run_path)
    assert vis.epochs == list(range(1, SMALL_EPOCHS + 1)), "tests that loop over epochs need every epoch fitted"
    return vis


@pytest.fixture
def small_run_copy(small_run_path, tmp_path):
    """A private copy of the small run's directory, for tests that change or damage it."""
    dest = tmp_path / "run"
    shutil.copytree(small_run_path, dest)
    return dest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as float32 features (1,797 x 64) and labels."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64)


@pytest.fixture(scope="session")
def mnist_tiny(mnist_small):
    """300 of those digits (240 train, 60 test), for recording tests that capture many times."""
    x, labels, split, images = mnist_small
    idx = np.r_[0:240, SMALL_TRAIN:SMALL_TRAIN + 60]
    return x[idx], labels[idx], split[idx], images[idx]


@pytest.fixture(scope="session")
def digits_head(digits):
    """A linear head trained to ~99% accuracy on the digits features (scaled to [0, 1])."""
    X, y = digits
    X = X / 16.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = torch.nn.Linear(X.shape[1], 10)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(xt), yt).backward()
        opt.step()
    head.requires_grad_(False)
    return X, y, head


@pytest.fixture
def tiny_feature_run(tmp_path, digits_head):
    """A features-only run of 300 digits, 3 epochs (small drifts), fitted with TINY_FIT."""
    X, y, head = digits_head
    rng = np.random.default_rng(0)
    X = X[:300]
    feats = [(e, (X + 0.02 * e * rng.standard_normal(X.shape)).astype(np.float32)) for e in (1, 2, 3)]
    path = record_features(tmp_path / "tiny", feats, y[:300], head)
    dvi.fit(path, progress=False, **TINY_FIT)
    return path


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every test that needs a browser.

    Session-wide because Playwright's sync API runs one instance at a time: a second
    ``sync_playwright()`` while the first is alive fails ("Sync API inside the asyncio loop").
    """
    pytest.importorskip("playwright")
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "browser"))
    from harness import launch_browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()
