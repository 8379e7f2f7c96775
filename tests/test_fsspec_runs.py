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
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import fsspec
import fsspec.implementations.memory
import numpy as np
import pytest
import torch
from torch import nn
from engine_support import TINY_FIT

import dvi_widget as dvi
from dvi_widget.errors import DVIError, RunFileError
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

    @staticmethod
    def features_of(state: dict, x: torch.Tensor) -> np.ndarray:
        net = Net()
        net.load_state_dict(state)
        with torch.no_grad():
            return net.features(x).numpy()


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
    remote_page = again.export_html(f"{mem_url}-page.html")   # outputs may be URLs too
    assert str(remote_page) == f"memory://{run_path(mem_url).path}-page.html"
    assert MEM.cat_file(remote_page.path).startswith(b"<!DOCTYPE html>")
    assert abs(len(MEM.cat_file(remote_page.path)) - page.stat().st_size) < 100
    MEM.rm_file(remote_page.path)
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
    # one thread: the thread policy picks by the load, and a fit on another thread count rounds torch's
    # float reductions differently (tests comparing against a fresh fit pin it too)
    dvi.fit(mem_url, progress=False, threads=1, **TINY_FIT)
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
    # one thread in every fit, as in mem_run (see there)
    with pytest.raises(Killed):
        dvi.fit(mem_run, progress=False, threads=1, **TINY_FIT)
    monkeypatch.undo()
    process_dies(mem_run)
    assert MEM.exists(f"{run_path(mem_run).path}/fits/000003/fit.npz")
    assert dvi.Visualization(mem_run).epochs == [1, 2]
    assert RunDir(mem_run).fitted_epochs(verify=True) == [1, 2]
    vis = dvi.fit(mem_run, progress=False, threads=1, **TINY_FIT)
    assert vis.epochs == [1, 2, 3]
    # the same epoch fitted uninterrupted on a local path gives the same embedding (same seed)
    local = tmp_path / "run"
    with dvi.Recorder(local, inputs=xt, labels=y, images=images, progress=False) as rec:
        for e in (1, 2, 3):
            model.load_state_dict(states[e - 1])
            rec.capture(model, features="features", head=model.fc)
    ref = dvi.fit(local, progress=False, threads=1, **TINY_FIT)
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


def test_thumbnails_of_a_memory_run_are_read_row_by_row(mem_run, digits_training, monkeypatch):
    _, _, images, _ = digits_training
    vis = dvi.Visualization(mem_run)
    path = RunDir(mem_run).path / "thumbnails.npy"
    asked = []
    real = type(path.fs).cat_ranges

    def spy(self, paths, starts, ends, **kw):
        asked.extend(e - s for s, e in zip(starts, ends))
        return real(self, paths, starts, ends, **kw)
    monkeypatch.setattr(type(path.fs), "cat_ranges", spy)
    np.testing.assert_array_equal(vis.thumbnails([7, 3, 4, 299, 3]), images[[7, 3, 4, 299, 3]])
    assert sum(asked) == 4 * 64, "only the four rows asked for are read (3 and 4 in one range)"
    assert len(asked) == 3


class FolderlessMemoryFS(fsspec.implementations.memory.MemoryFileSystem):
    """Like an object store: no folders; a prefix exists only through the keys under it."""

    protocol = ("folderless",)
    store: dict = {}
    pseudo_dirs = [""]

    def makedirs(self, path, exist_ok=False):
        pass

    def mkdir(self, path, create_parents=True, **kwargs):
        pass


def test_a_file_system_without_folders_records_fits_and_replaces(digits_training):
    xt, y, _, states = digits_training
    head = Net()
    head.load_state_dict(states[2])
    head = head.fc   # features-only capture: features are this run's 24-d hidden layer
    X = Net.features_of(states[2], xt)
    fsspec.register_implementation("folderless", FolderlessMemoryFS, clobber=True)
    url = f"folderless://bucket/run-{uuid.uuid4().hex[:6]}"
    feats = [(e, (X[:200] + 0.02 * e).astype(np.float32)) for e in (1, 2)]
    with dvi.Recorder(url, labels=y[:200], progress=False) as rec:
        for e, H in feats:
            rec.capture(features=H, head=head, epoch=e)
    assert dvi.fit(url, progress=False, **TINY_FIT).epochs == [1, 2]
    assert FolderlessMemoryFS.pseudo_dirs == [""], "no folder was ever made"
    with dvi.Recorder(url, labels=y[:200], progress=False) as rec:
        rec.capture(features=feats[0][1], head=head, epoch=2, replace=True)
    vis = dvi.fit(url, progress=False, **TINY_FIT)
    assert vis.epochs == [1, 2]
    np.testing.assert_array_equal(vis.features(2), feats[0][1])
    assert not [k for k in FolderlessMemoryFS.store if "/." in k], "no temporary keys or lock note left"


class NoExclusiveCreateFS(fsspec.implementations.memory.MemoryFileSystem):
    """A driver without exclusive create (``"xb"``), as some object-store drivers are."""

    protocol = ("noexcl",)
    store: dict = {}
    pseudo_dirs = [""]

    def _open(self, path, mode="rb", **kwargs):
        if "x" in mode:
            raise NotImplementedError("File mode not supported")
        return super()._open(path, mode, **kwargs)


def test_without_exclusive_create_the_lock_is_written_when_absent_and_read_back():
    fsspec.register_implementation("noexcl", NoExclusiveCreateFS, clobber=True)
    where = run_path(f"noexcl://bucket/run-{uuid.uuid4().hex[:6]}")
    info = {"pid": os.getpid(), "host": socket.gethostname(), "what": "Recorder"}
    first = lock._acquire_fs_lock(where, "Recorder", info)
    assert json.loads((where / lock.HOLDER_NAME).read_text())["token"] == first.token
    with pytest.raises(DVIError, match="being written by Recorder in process"):
        lock._acquire_fs_lock(where, "dvi.fit", {**info, "what": "dvi.fit"})
    first.release()
    assert not (where / lock.HOLDER_NAME).exists()
    lock._acquire_fs_lock(where, "dvi.fit", info).release()


# ---- real processes on a shared file system without atomic rename --------------------------------
# ``objdisk://`` (tests/fsspec_support.py) is fsspec's local file system with a copy-and-delete move:
# on disk, so several processes share it, and written like an object store by dvi_widget.
ENV = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.path.dirname(os.path.dirname(__file__))])}

WRITER = textwrap.dedent("""
    import sys, time, numpy as np, torch
    torch.set_num_threads(1)
    import fsspec_support, dvi_widget as dvi
    import dvi_widget.store.atomic as atomic
    url, epochs, hold, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    real_manifest = atomic.write_manifest

    def manifest_after_a_pause(folder):   # every file of epoch `pause` written, its marker not yet
        if folder.name == f"{pause:06d}":
            print("paused", flush=True)
            time.sleep(120)
        real_manifest(folder)
    atomic.write_manifest = manifest_after_a_pause
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 4
    head = torch.nn.Linear(32, 4)
    with dvi.Recorder(url, labels=labels, progress=False) as rec:
        print("open", flush=True)
        for e in range(len(rec.epochs) + 1, epochs + 1):
            rec.capture(features=rng.standard_normal((400, 32)).astype(np.float32), head=head, epoch=e)
            print(e, flush=True)
        time.sleep(hold)
""")

READER = textwrap.dedent("""
    import json, sys, time, torch
    torch.set_num_threads(1)
    import fsspec_support
    from pathlib import Path
    from dvi_widget.store.rundir import RunDir, load_npz
    from dvi_widget.store.heads import load_head
    url, stop = sys.argv[1], Path(sys.argv[2])
    loops, errors, seen = 0, [], set()
    print("ready", flush=True)
    while not stop.exists():
        try:
            run = RunDir(url)
            before = len(seen)
            for e in run.recorded_epochs():
                d = run.epoch_dir(e)
                load_npz(d / "features.npz"); load_npz(d / "outputs.npz"); load_head(d)
                seen.add(e)
            if len(seen) > before:
                print("seen", *sorted(seen), flush=True)
        except Exception as exc:
            if "no run directory" not in str(exc) and "not a dvi_widget run directory" not in str(exc):
                errors.append(f"{type(exc).__name__}: {exc}")
        loops += 1
    print(json.dumps({"loops": loops, "errors": errors[:5], "seen": sorted(seen)}))
""")


def test_processes_on_a_file_system_without_rename_a_sigkilled_writer_and_a_reader(tmp_path):
    import fsspec_support  # noqa: F401  (registers objdisk://)
    url = f"objdisk://{tmp_path}/run"
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, url, str(stop)], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "8", "0", "6"], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    while not lines or lines[-1] not in ("paused", ""):
        lines.append(writer.stdout.readline().strip())
    assert lines == ["open", "1", "2", "3", "4", "5", "paused"], writer.stderr.read()
    sixth = tmp_path / "run" / "epochs" / "000006"
    assert sorted(p.name for p in sixth.iterdir()) == ["capture.json", "features.npz", "head.json", "head.npz",
                                                       "outputs.npz"], "every file of epoch 6 is there, unmarked"
    writer.send_signal(signal.SIGKILL)       # the writer dies before writing epoch 6's marker
    writer.wait()
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.strip()) for x in reader.stdout], daemon=True).start()
    line = ""
    while line != "seen 1 2 3 4 5":          # the reader goes on until it has loaded every finished epoch
        line = lines.get(timeout=120)
        assert line.startswith("seen"), (line, reader.stderr.read() if reader.poll() is not None else "")
    time.sleep(0.5)                          # ... and a while longer, beside the half-written epoch 6
    stop.touch()
    assert reader.wait(timeout=120) == 0, reader.stderr.read()
    out = []
    while not lines.empty() or not out or not out[-1].startswith("{"):
        out.append(lines.get(timeout=30))
    report = json.loads(out[-1])
    assert report["errors"] == [], "a reader beside the writer only ever loads finished epochs"
    assert report["seen"] == [1, 2, 3, 4, 5]
    finished = RunDir(url).recorded_epochs()
    assert finished == [1, 2, 3, 4, 5]
    assert sixth.exists(), "readers never delete, not even a killed writer's leftovers"
    # the killed writer's lock is stale (its process is gone, on this host): the next writer takes over,
    # removes whatever half-written epoch it left, and goes on from the last finished epoch
    with dvi.Recorder(url, labels=np.arange(400) % 4, progress=False) as rec:
        assert rec.epochs == [1, 2, 3, 4, 5]
        for e in (6, 7):
            H = np.random.default_rng(e).standard_normal((400, 32)).astype(np.float32)
            assert rec.capture(features=H, head=nn.Linear(32, 4)) == e
    assert RunDir(url).recorded_epochs() == [1, 2, 3, 4, 5, 6, 7]
    base = tmp_path / "run" / "epochs"
    assert sorted(p.name for p in base.iterdir()) == [f"{e:06d}" for e in range(1, 8)]
    assert not (tmp_path / "run" / lock.HOLDER_NAME).exists()


def test_processes_a_second_writer_is_refused_and_told_who_writes(tmp_path):
    import fsspec_support  # noqa: F401
    url = f"objdisk://{tmp_path}/run"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "2", "60", "0"], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [writer.stdout.readline().strip() for _ in range(3)]
        assert lines == ["open", "1", "2"], writer.stderr.read() if writer.poll() is not None else lines
        with pytest.raises(DVIError, match=rf"being written by Recorder in process {writer.pid} on host "):
            dvi.fit(url, progress=False, **TINY_FIT)
        assert dvi.Visualization(url).epochs == [], "reading meanwhile is fine"
    finally:
        writer.kill()
        writer.wait()


def count_requests(monkeypatch) -> dict[str, int]:
    """{memory FS method: calls} from now on, for the request-counting tests (each call stands for a
    round trip on an object store)."""
    calls: dict[str, int] = {}
    cls = type(MEM)
    for name in ("find", "ls", "info", "exists", "isdir", "isfile", "cat", "cat_file", "_open"):
        real = getattr(cls, name)

        def spy(self, *a, _real=real, _name=name, **kw):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(self, *a, **kw)
        monkeypatch.setattr(cls, name, spy)
    return calls


def test_listing_a_remote_run_costs_one_listing_not_a_request_per_epoch(mem_run, monkeypatch):
    calls = count_requests(monkeypatch)
    run = RunDir(mem_run)
    calls.clear()
    assert run.recorded_epochs() == [1, 2]
    assert run.fitted_epochs(verify=True) == [1, 2]
    # one listing each, the manifests in one batch (``cat`` of many keys; the memory FS serves it
    # key by key, object-store drivers concurrently), and no request per epoch folder
    assert calls.get("find") == 2 and calls.get("cat") == 1, calls
    assert sum(calls.get(k, 0) for k in ("info", "exists", "isdir", "isfile", "ls")) == 0, calls


def test_reading_a_remote_file_costs_one_size_check_and_one_download(mem_run, monkeypatch):
    """Each request is a round trip on an object store: a loader asks for the file's size (checked
    against the run's limit before downloading) and downloads it once, plus the run's meta.json
    stamp; no exists/is_file/header reads on top (there were about five requests per file)."""
    calls = count_requests(monkeypatch)
    dvi.Visualization(mem_run).embedding(2)   # the first read in a folder also finds the run's meta.json
    vis = dvi.Visualization(mem_run)
    vis.metrics
    calls.clear()
    vis.embedding(2), vis.background(2)   # fit.npz and map.npz of epoch 2
    assert calls.get("cat_file") == 2 and "_open" not in calls, calls
    assert calls.get("info") == 4, calls  # each file's size, and meta.json's stamp for its limit
    assert sum(calls.get(k, 0) for k in ("exists", "isdir", "isfile", "ls", "cat")) == 0, calls
    calls.clear()
    dvi.DVIWidget(vis)
    assert "_open" not in calls and calls.get("isfile", 0) == 0, calls


def test_a_remote_file_over_the_run_limit_is_refused_before_it_is_downloaded(mem_run, monkeypatch):
    from dvi_widget.store import rundir
    vis = dvi.Visualization(mem_run)
    monkeypatch.setattr(rundir, "_cap", lambda path, meta=None: 1000)   # a tiny limit stands for a huge file
    monkeypatch.setattr(rundir, "_slack", lambda cap: 0)
    calls = count_requests(monkeypatch)
    with pytest.raises(RunFileError, match=r"fits/000002/fit\.npz") as err:
        vis.embedding(2)
    assert "over this run's limit" in str(err.value) and calls.get("cat_file", 0) == 0, calls
