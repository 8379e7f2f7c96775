"""Runs on shared storage: a run path may be an fsspec URL (``memory://``, ``file://``; object stores
through their fsspec drivers).

Specification:
- a run recorded (capture and capture_checkpoints), fitted and read (Visualization, the widget,
  export, save) entirely on ``memory://`` or on a ``file://`` URL gives the same files' contents,
  embeddings, maps and metrics as the same run on a plain local path (same seeds);
- on a file system without atomic rename (fsspec's memory FS stands in for an object store) an
  epoch is trusted only once its manifest, written last, is there: a killed writer's half-written
  epoch is ignored by readers, never deleted by them, and written again by the next capture or fit;
  a replace killed mid-copy is rolled forward by the next writer;
- the writer lock there is an exclusively created ``.writer.json``: a second writer is refused and
  told who holds it; a lock left by a dead process on this host is taken over; one from another
  host is refused until ``break_lock``;
- a bad URL scheme is a DVIError naming it, before anything is written anywhere.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid

import fsspec
import numpy as np
import pytest
import torch
from torch import nn
from engine_support import TINY_FIT

import dvi_widget as dvi
from dvi_widget.errors import DVIError
from dvi_widget.store import atomic, lock
from dvi_widget.store.atomic import AtomicFolder
from dvi_widget.store.fs import RemotePath, run_path
from dvi_widget.store.rundir import RunDir

MEM = fsspec.filesystem("memory")


class Net(nn.Module):
    """A small MLP classifier of 8x8 digits: ``features`` (64 -> 24) then ``fc`` (24 -> 10)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, 24), nn.ReLU())
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        return self.fc(self.features(x))


class Killed(BaseException):
    """The writing process dies here: nothing after this point runs, no clean-up either."""


@pytest.fixture(scope="module")
def digits_training(digits):
    """(x (300, 64) float32 tensor, labels, images uint8 (300, 8, 8), [state_dict after epoch 1, 2, 3])."""
    X, y = digits
    X, y = (X[:300] / 16.0).astype(np.float32), y[:300]
    images = (X.reshape(-1, 8, 8) * 255).astype(np.uint8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    states = []
    for _ in range(3):
        for _ in range(15):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return xt, y, images, states


@pytest.fixture
def mem_url():
    """A fresh folder on fsspec's in-process memory file system, removed afterwards."""
    root = f"/dvi-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}"
    if MEM.exists(root):
        MEM.rm(root, recursive=True)


def memory_files(url: str) -> dict[str, bytes]:
    """Every key under ``url`` on the memory FS with its bytes (a reader must leave this unchanged)."""
    root = run_path(url).path
    return {k: MEM.cat_file(k) for k in sorted(MEM.find(root))}


def record_and_fit(where, ckpt_dir, digits_training) -> dvi.Visualization:
    """Epoch 1 captured from the live model, epochs 2 and 3 from checkpoint files in ``ckpt_dir``."""
    xt, y, images, states = digits_training
    model = Net()
    files = []
    for e in (2, 3):
        f = f"{ckpt_dir}/epoch_{e}.pt"
        with fsspec.open(f, "wb") as fh:
            torch.save(states[e - 1], fh)
        files.append(f)
    model.load_state_dict(states[0])
    with dvi.Recorder(where, inputs=xt, labels=y, images=images, progress=False) as rec:
        assert rec.capture(model, features="features", head=model.fc) == 1
        assert rec.capture_checkpoints(Net, files, features="features", head="fc") == [2, 3]
    return dvi.fit(where, progress=False, **TINY_FIT)


def assert_same_results(a: dvi.Visualization, b: dvi.Visualization) -> None:
    assert a.epochs == b.epochs == [1, 2, 3]
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.thumbnails([0, 5]), b.thumbnails([0, 5]))
    assert a.metrics == b.metrics
    for e in a.epochs:
        np.testing.assert_array_equal(a.embedding(e), b.embedding(e))
        np.testing.assert_array_equal(a.background(e), b.background(e))
        np.testing.assert_array_equal(a.predictions(e), b.predictions(e))
        assert a.background_extent(e) == b.background_extent(e)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, digits_training):
    d = tmp_path_factory.mktemp("fsspec_local")
    (d / "ckpt").mkdir()
    return record_and_fit(d / "run", str(d / "ckpt"), digits_training)


def test_a_run_recorded_fitted_and_read_on_memory_equals_the_local_run(mem_url, local_reference,
                                                                       digits_training, tmp_path):
    vis = record_and_fit(mem_url, f"{mem_url}-ckpt", digits_training)
    assert isinstance(vis.path, RemotePath) and str(vis.path).startswith("memory://")
    assert_same_results(vis, local_reference)
    # every file the local run has, the memory run has, with the same arrays (the fits byte for byte)
    local_files = sorted(str(p.relative_to(local_reference.path)) for p in local_reference.path.rglob("*")
                         if p.is_file() and not p.name.startswith(".writer"))
    root = vis.path.path
    mem_files = sorted(k[len(root) + 1:] for k in MEM.find(root))
    assert mem_files == local_files, "no temporary keys, lock notes or stray files are left behind"
    for rel in ("fits/000003/fit.npz", "epochs/000002/features.npz", "labels.npy", "meta.json"):
        assert MEM.cat_file(f"{root}/{rel}") == (local_reference.path / rel).read_bytes(), rel
    # readers: reopening by URL, the widget, the offline page, a saved local copy
    again = dvi.Visualization.load(mem_url)
    np.testing.assert_array_equal(again.embedding(2), local_reference.embedding(2))
    w = dvi.DVIWidget(again)
    assert w.epoch == 3
    page = again.export_html(tmp_path / "mem.html")
    from dvi_widget.outputs.export import export_run
    page2 = export_run(mem_url, tmp_path / "mem2.html")
    assert page.stat().st_size > 10_000 and page2.stat().st_size > 10_000
    saved = dvi.Visualization.load(again.save(tmp_path / "saved"))
    np.testing.assert_array_equal(saved.embedding(3), local_reference.embedding(3))
    # fitting again fits nothing and changes nothing
    before = memory_files(mem_url)
    dvi.fit(mem_url, progress=False, **TINY_FIT)
    assert memory_files(mem_url) == before


def test_a_run_on_a_file_url_equals_the_local_run(tmp_path, local_reference, digits_training):
    url = (tmp_path / "run").as_uri()
    assert url.startswith("file:///")
    (tmp_path / "ckpt").mkdir()
    vis = record_and_fit(url, (tmp_path / "ckpt").as_uri(), digits_training)
    assert str(vis.path) == url
    assert_same_results(vis, local_reference)
    # file:// is fsspec's local file system: the same folder is a plain local run too
    assert_same_results(dvi.Visualization(tmp_path / "run"), local_reference)
    assert not [p for p in (tmp_path / "run").rglob(".tmp-*")]


@pytest.fixture
def mem_run(mem_url, digits_training):
    """A memory run with epochs 1 and 2 recorded and fitted (and the live model's epoch-3 weights)."""
    xt, y, images, states = digits_training
    model = Net()
    with dvi.Recorder(mem_url, inputs=xt, labels=y, images=images, progress=False) as rec:
        for e in (1, 2):
            model.load_state_dict(states[e - 1])
            rec.capture(model, features="features", head=model.fc)
    dvi.fit(mem_url, progress=False, **TINY_FIT)
    return mem_url


def die_at_commit(monkeypatch, which: str) -> None:
    """The writer is killed after writing every file of a ``which`` ("epochs"/"fits") folder, before
    its manifest: the files are there, the marker is not, and no clean-up runs."""
    real_exit = AtomicFolder.__exit__

    def exit_(self, exc_type, exc, tb):
        if exc_type is None and self.final.parent.name == which:
            raise Killed
        return real_exit(self, exc_type, exc, tb)
    monkeypatch.setattr(AtomicFolder, "__exit__", exit_)


def process_dies(url: str) -> None:
    """What the death of this process would leave: its lock note, naming a process that is gone."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    note = run_path(url) / lock.HOLDER_NAME
    # (a with-block released it on the way out of the simulated kill; a real kill would not have)
    info = json.loads(note.read_text()) if note.exists() else {"host": socket.gethostname(), "what": "dvi.fit",
                                                                  "since": "2026-01-01T00:00:00+00:00"}
    note.fs.pipe_file(note.path, json.dumps({**info, "pid": dead.pid}).encode())
    lock._held.pop(str(run_path(url)), None)


def test_a_killed_capture_is_ignored_by_readers_never_deleted_and_redone(mem_run, digits_training, monkeypatch):
    xt, y, images, states = digits_training
    model = Net()
    model.load_state_dict(states[2])
    rec = dvi.Recorder(mem_run, inputs=xt, labels=y, images=images, progress=False)
    die_at_commit(monkeypatch, "epochs")
    with pytest.raises(Killed):
        rec.capture(model, features="features", head=model.fc, epoch=3)
    monkeypatch.undo()
    process_dies(mem_run)
    half = run_path(mem_run) / "epochs" / "000003"
    assert sorted(p.name for p in half.iterdir()) == ["capture.json", "features.npz", "head.json", "head.npz",
                                                      "outputs.npz"], "every file written, no manifest"
    # readers: the unmarked epoch does not exist for them, and they change nothing
    before = memory_files(mem_run)
    vis = dvi.Visualization(mem_run)
    assert vis.epochs == [1, 2] and RunDir(mem_run).recorded_epochs() == [1, 2]
    vis.reload()
    dvi.DVIWidget(vis)
    assert memory_files(mem_run) == before, "a reader never deletes or writes"
    # the next writer (the dead process's stale lock is taken over) captures and fits epoch 3
    done_before = {k: v for k, v in before.items() if "/fits/00000" in k}
    with dvi.Recorder(mem_run, inputs=xt, labels=y, images=images, progress=False) as rec2:
        assert rec2.epochs == [1, 2]
        assert rec2.capture(model, features="features", head=model.fc) == 3
    vis = dvi.fit(mem_run, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2, 3]
    after = memory_files(mem_run)
    assert {k: after[k] for k in done_before} == done_before, "finished fits are untouched"
    assert not [k for k in after if "/." in k], "no temporary keys or lock note left"


def test_a_killed_fit_epoch_is_ignored_and_fitted_again_with_the_same_result(mem_run, digits_training,
                                                                             monkeypatch, tmp_path):
    xt, y, images, states = digits_training
    model = Net()
    model.load_state_dict(states[2])
    with dvi.Recorder(mem_run, inputs=xt, labels=y, images=images, progress=False) as rec:
        rec.capture(model, features="features", head=model.fc)
    die_at_commit(monkeypatch, "fits")
    with pytest.raises(Killed):
        dvi.fit(mem_run, progress=False, **TINY_FIT)
    monkeypatch.undo()
    process_dies(mem_run)
    assert MEM.exists(f"{run_path(mem_run).path}/fits/000003/fit.npz")
    assert dvi.Visualization(mem_run).epochs == [1, 2]
    assert RunDir(mem_run).fitted_epochs(verify=True) == [1, 2]
    vis = dvi.fit(mem_run, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2, 3]
    # the same epoch fitted uninterrupted on a local path gives the same embedding (same seed)
    local = tmp_path / "run"
    with dvi.Recorder(local, inputs=xt, labels=y, images=images, progress=False) as rec:
        for e in (1, 2, 3):
            model.load_state_dict(states[e - 1])
            rec.capture(model, features="features", head=model.fc)
    ref = dvi.fit(local, progress=False, **TINY_FIT)
    for e in (1, 2, 3):
        np.testing.assert_array_equal(vis.embedding(e), ref.embedding(e))
    assert vis.metrics == ref.metrics


def test_replacing_an_epoch_stages_it_and_a_kill_mid_copy_is_rolled_forward(mem_run, digits_training,
                                                                            monkeypatch):
    xt, y, images, states = digits_training
    model = Net()
    model.load_state_dict(states[2])
    url = mem_run
    rec = dvi.Recorder(url, inputs=xt, labels=y, images=images, progress=False)
    real_commit = atomic.commit_staged

    def commit_then_die(staged, final):   # unmark the old epoch, copy one file, then the process dies
        (final / atomic.MANIFEST).unlink()
        final.fs.copy((staged / "features.npz").path, (final / "features.npz").path)
        raise Killed
    monkeypatch.setattr(atomic, "commit_staged", commit_then_die)
    with pytest.raises(Killed):
        rec.capture(model, features="features", head=model.fc, epoch=2, replace=True)
    monkeypatch.setattr(atomic, "commit_staged", real_commit)
    process_dies(url)
    assert RunDir(url).recorded_epochs() == [1], "mid-copy, the epoch is unmarked: readers skip it"
    staged = [p.name for p in (run_path(url) / "epochs").iterdir() if p.name.startswith(".tmp-000002-")]
    assert len(staged) == 1
    with dvi.Recorder(url, inputs=xt, labels=y, images=images, progress=False) as rec2:
        assert rec2.epochs == [1, 2], "the next writer finished the copy"
    feats = RunDir(url).epoch_dir(2) / "features.npz"
    with feats.open("rb") as f:
        got = np.load(f)["features"]
    want = model.features(xt).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not [p for p in (run_path(url) / "epochs").iterdir() if p.name.startswith(".")]
    vis = dvi.fit(url, progress=False, **TINY_FIT)   # the replaced capture's fit is redone
    assert vis.epochs == [1, 2]


def test_the_writer_lock_on_a_memory_run(mem_run):
    url = mem_run
    note = run_path(url) / lock.HOLDER_NAME
    # another live writer on another host: refused, named, until the lock is broken on purpose
    note.fs.pipe_file(note.path, json.dumps({"pid": 1, "host": "gpu-node-7", "what": "dvi.fit",
                                             "since": "2026-01-01T00:00:00+00:00", "token": "x"}).encode())
    with pytest.raises(DVIError, match=r"dvi\.fit in process 1 on host gpu-node-7"):
        dvi.fit(url, progress=False, **TINY_FIT)
    assert dvi.Visualization(url).epochs == [1, 2], "reading while another writes is fine"
    assert lock.break_lock(url)["host"] == "gpu-node-7"
    dvi.fit(url, progress=False, **TINY_FIT)
    assert not note.exists(), "a writer removes its own note when it is done"
    # exclusive create: a second writer in another process (a second hold here) is refused
    where = run_path(url)
    first = lock._acquire_fs_lock(where, "Recorder", {"pid": os.getpid(), "host": "h", "what": "Recorder"})
    with pytest.raises(DVIError, match="being written by Recorder"):
        lock._acquire_fs_lock(where, "dvi.fit", {"pid": os.getpid(), "host": "h", "what": "dvi.fit"})
    note.fs.pipe_file(note.path, note.read_bytes().replace(b'"token": "', b'"token": "other'))
    first.release()
    assert note.exists(), "release never removes a note that is not this writer's"
    note.unlink()


@pytest.mark.parametrize("url, named", [("foo://runs/a", "'foo://'"), ("nosuch::memory://runs/a", "'nosuch")])
def test_a_bad_url_scheme_is_named_before_anything_is_written(url, named, tmp_path, monkeypatch, digits_training):
    xt, y, images, _ = digits_training
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DVIError, match=named):
        dvi.Recorder(url, inputs=xt, labels=y, progress=False)
    with pytest.raises(DVIError, match=named):
        dvi.fit(url, progress=False)
    with pytest.raises(DVIError, match=named):
        dvi.Visualization(url)
    assert os.listdir(tmp_path) == [], "no local folder named after the URL was created"


def test_an_object_store_without_its_driver_says_what_to_install():
    try:
        import s3fs  # noqa: F401
        pytest.skip("s3fs is installed")
    except ImportError:
        pass
    with pytest.raises(DVIError, match=r"'s3://'.*not installed.*s3fs"):
        dvi.fit("s3://some-bucket/runs/mnist")
