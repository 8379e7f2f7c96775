"""Fuzzing the run-directory loaders: damaged files are named, never crash, never allocate past a cap.

Hypothesis truncates, flips bits in, and edits the headers of each file kind a run holds
(.npy, .npz, JSON, a head, a vis model) and of a widget state file. Every outcome must be
either a correct load (the documented shapes) or a ``RunFileError`` naming the file; any
other exception fails. ``tracemalloc`` measures the Python/numpy allocations of each load,
which must stay under ``CAP`` (the files here hold well under 1 MB; a header believed
blindly would ask for gigabytes); the process's peak resident memory (torch's allocations
included) may not grow by more than ``RSS_CAP`` over a file kind's examples, and a load that
runs past ``SECONDS`` is stopped and fails (it found a model.json depth of 10**12 that made
the loader loop on). Bounded in time: a fixed number of examples per file kind.
"""
from __future__ import annotations

import json
import re
import shutil
import tracemalloc

import numpy as np
import pytest
import torch
from engine_support import TINY_FIT, record_features
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dvi_widget as dvi
from dvi_widget.store.heads import load_head
from dvi_widget.store.rundir import RunDir, load_npz

CAP = 64 * 2 ** 20          # bytes a single load may allocate (the largest file here is < 1 MB)
RSS_CAP = 512 * 2 ** 20     # growth of the process's peak memory (torch allocations included) over a test
SECONDS = 60                # one load may take this long; beyond it, it is taken for a runaway
N, D = 120, 16
EXAMPLES = 25


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fitted features-only run with thumbnails, and a widget state file beside it."""
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 3
    base = rng.standard_normal((N, D)).astype(np.float32)
    base[:, :3] += 3 * np.eye(3, dtype=np.float32)[labels]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = torch.nn.Sequential(torch.nn.Linear(D, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    images = rng.integers(0, 255, (N, 8, 8), dtype=np.uint8)
    path = tmp_path_factory.mktemp("fuzz") / "run"
    record_features(path, [(1, base), (2, base * 1.1)], labels, head, images=images, progress=False)
    dvi.fit(path, progress=False, **TINY_FIT)
    vis = dvi.Visualization(path)
    state = {"format": "dvi_widget.state", "version": 1, "run_id": vis.run_id, "n_samples": N,
             "classes": vis.classes, "epoch": 2, "selected": [1, 2, 3], "filters": {"color_by": "label"},
             "view": {"cx": 0.0, "cy": 0.0, "zoom": 1.0}}
    (path.parent / "state.json").write_text(json.dumps(state))
    return path


def _load(path, rel):
    """Load ``rel`` the way the library does, and check what came back has the documented form."""
    if rel == "../state.json":
        from dvi_widget.outputs.state import check_run, read_state
        state = read_state(path / rel)
        check_run(state, dvi.Visualization(path), path / rel)
        return
    if rel == "meta.json":
        vis = dvi.Visualization(path)
        assert len(vis.classes) >= 2 and vis.labels.shape == (vis.n,) and vis.n == N
        return
    if rel in ("labels.npy", "split.npy"):
        vis = dvi.Visualization(path)
        assert vis.labels.shape == (N,) and vis.split.shape == (N,)
        return
    if rel == "thumbnails.npy":
        t = dvi.Visualization(path).thumbnails([0, N - 1])
        assert t.dtype == np.uint8 and t.shape[0] == 2
        return
    if rel.endswith(("head.json", "head.npz")):
        h = load_head(path / "epochs" / "000001")
        assert h(torch.zeros(2, D)).shape[0] == 2
        return
    vis = dvi.Visualization(path)
    if rel.endswith("features.npz"):
        f = load_npz(path / rel)
        assert f["features"].shape == (N, D)
    elif rel.endswith("outputs.npz"):
        assert vis.predictions(1).shape == (N,) and vis.probabilities(1).shape == (N, 3)
    elif rel.endswith("fit.npz"):
        assert vis.embedding(1).shape == (N, 2)
        vis.background(1), vis.background_extent(1)
    elif rel.endswith(("model.json", "model.npz")):
        assert vis.project(1, np.zeros((2, D), np.float32)).shape == (2, 2)
        assert vis.inverse(1, np.zeros((2, 2), np.float32)).shape == (2, D)
    elif rel.endswith("metrics.json"):
        assert all(isinstance(v, (int, float)) or v is None for v in vis.metrics[1].values())


KINDS = ["meta.json", "labels.npy", "split.npy", "thumbnails.npy", "epochs/000001/features.npz",
         "epochs/000001/outputs.npz", "epochs/000001/head.json", "epochs/000001/head.npz", "fits/000001/fit.npz",
         "fits/000001/model.json", "fits/000001/model.npz", "fits/000001/metrics.json", "../state.json"]


def _header_edit(data: bytes, number: int, where: int) -> bytes:
    """Replace one number in the file's text parts (npy headers, JSON) with ``number``."""
    spans = [m.span() for m in re.finditer(rb"\d+", data[:200_000])]
    if not spans:
        return data
    a, b = spans[where % len(spans)]
    return data[:a] + str(number).encode() + data[b:]


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 7)),
    st.tuples(st.just("header"), st.sampled_from([0, 1, 7, 300, 20000, 2 ** 31, 10 ** 12, 2 ** 62]),
              st.integers(0, 10_000)),
)


def _mutate(data: bytes, m) -> bytes:
    kind, a, b = m
    if kind == "truncate":
        return data[: int(a * len(data))]
    if kind == "flip":
        if not data:
            return data
        i = min(int(a * len(data)), len(data) - 1)
        return data[:i] + bytes([data[i] ^ (1 << b)]) + data[i + 1:]
    return _header_edit(data, a, b)


@pytest.mark.parametrize("rel", KINDS)
def test_a_damaged_file_is_a_clean_load_or_a_run_file_error_naming_it(run, rel):
    import resource
    import signal
    target = (run / rel).resolve()
    original = target.read_bytes()
    _load(run, rel)   # the undamaged file loads
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def runaway(signum, frame):
        raise TimeoutError(f"a load of a damaged {rel} ran for over {SECONDS} s")
    previous = signal.signal(signal.SIGALRM, runaway)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(mutation)
    def check(m):
        target.write_bytes(_mutate(original, m))
        tracemalloc.start()
        signal.alarm(SECONDS)
        try:
            _load(run, rel)
        except dvi.RunFileError as e:
            # names the file; when the damage makes it disagree with another file (N in meta.json against
            # labels.npy), the message names that file and says the number came from this one
            assert str(target) in str(e) or str(run / rel) in str(e) or (str(run) in str(e) and target.name in str(e)), \
                f"{m}: does not name the file: {e}"
        except dvi.DVIError as e:
            # a state file that is not one is named too (read_state's own messages)
            assert rel == "../state.json" and str(run / rel) in str(e), f"{m}: {type(e).__name__}: {e}"
        finally:
            signal.alarm(0)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            target.write_bytes(original)
        assert peak < CAP, f"{m}: allocated {peak / 1e6:.0f} MB"
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
        assert grown < RSS_CAP, f"{m}: the process's peak memory grew by {grown / 1e6:.0f} MB"
    try:
        check()
    finally:
        signal.signal(signal.SIGALRM, previous)
        target.write_bytes(original)
    shutil.rmtree(run / "fits" / ".tmp-none", ignore_errors=True)
