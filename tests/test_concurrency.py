"""One writer, many readers: real processes working on one run directory at the same time.

- A reader that lists and loads epochs in a loop never disturbs a capture or a fit beside
  it (readers never delete), and sees only complete epochs.
- A second writer (a fit while another fit or a Recorder holds the run) gets a clear
  error naming the holder: its pid, host, what it is and since when.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from engine_support import TINY_FIT, record_features

import dvi_widget as dvi
from dvi_widget.store.atomic import MANIFEST
from dvi_widget.store.lock import HOLDER_NAME
from dvi_widget.store.rundir import RunDir, is_complete

ENV = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}

# A reader: lists the run's epochs in a loop and loads every file of each listed epoch,
# as a live widget's reload() does. Prints one JSON line: loops done, errors seen.
READER = textwrap.dedent("""
    import json, sys, time, torch
    torch.set_num_threads(1)
    from pathlib import Path
    from dvi_widget.store.rundir import RunDir, load_npz, load_json
    from dvi_widget.store.heads import load_head
    path, what, stop = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    loops, errors, seen = 0, [], set()
    while not stop.exists():
        try:
            run = RunDir(path)
            if what == "epochs":
                for e in run.recorded_epochs():
                    d = run.epoch_dir(e)
                    load_npz(d / "features.npz"); load_npz(d / "outputs.npz"); load_head(d)
                    seen.add(e)
            else:
                for e in run.fitted_epochs():
                    d = run.fit_dir(e)
                    load_npz(d / "fit.npz"); load_json(d / "metrics.json")
                    seen.add(e)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        loops += 1
        if loops == 1:
            (stop.parent / (stop.name + ".ready")).touch()   # the test starts writing only after this
        time.sleep(0.005)
    print(json.dumps({"loops": loops, "errors": errors[:5], "seen": sorted(seen)}))
""")


def _start_reader(path: Path, what: str, stop: Path) -> subprocess.Popen:
    """A reader process looping over the run; returns once it has finished its first loop."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(path), what, str(stop)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, deadline = stop.parent / (stop.name + ".ready"), time.monotonic() + 180
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the reader did not finish a first loop in 180 s"
        time.sleep(0.05)
    return proc


def _finish_reader(proc: subprocess.Popen, stop: Path) -> dict:
    stop.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _all_complete(path: Path, sub: str) -> list[str]:
    folder = path / sub
    return sorted(p.name for p in folder.iterdir())


def _features(n=300, d=32, epochs=3, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d)).astype(np.float32)
    labels = np.arange(n) % 3
    base[:, :3] += 4 * np.eye(3, dtype=np.float32)[labels]
    return [(e, base + 0.05 * e * rng.standard_normal((n, d)).astype(np.float32)) for e in range(1, epochs + 1)], labels


@pytest.fixture
def head():
    import torch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        h = torch.nn.Linear(32, 3)
    return h.requires_grad_(False)


CAPTURE = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.set_num_threads(1)
    import dvi_widget as dvi
    path, epochs = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    n, d = 300, 32
    labels = np.arange(n) % 3
    torch.manual_seed(0)
    head = torch.nn.Linear(d, 3)
    with dvi.Recorder(path, labels=labels, progress=False) as rec:
        for e in range(1, epochs + 1):
            rec.capture(features=rng.standard_normal((n, d)).astype(np.float32), head=head, epoch=e)
    print("captured", epochs)
""")


def test_a_reader_listing_epochs_in_a_loop_never_disturbs_a_capture(tmp_path):
    path, stop = tmp_path / "run", tmp_path / "stop"
    # the run exists before the reader starts (the Recorder creates it)
    writer = subprocess.Popen([sys.executable, "-c", CAPTURE, str(path), "1"], env=ENV)
    assert writer.wait(timeout=120) == 0
    reader = _start_reader(path, "epochs", stop)
    try:
        # a second Recorder in a new process resumes the run and captures 40 more epochs... with replace off,
        # so it records epochs 2..41 while the reader lists and loads every complete epoch
        code = CAPTURE.replace("for e in range(1, epochs + 1)", "for e in range(2, epochs + 2)")
        writer = subprocess.run([sys.executable, "-c", code, str(path), "40"], env=ENV,
                                capture_output=True, text=True, timeout=300)
    finally:
        seen = _finish_reader(reader, stop)
    assert writer.returncode == 0, writer.stderr[-2000:]
    assert seen["errors"] == [], seen
    # the reader was looping before the capture began and until it ended (how many loops depends on the load)
    assert seen["loops"] >= 2, "the reader ran beside the capture"
    run = RunDir(path)
    assert run.recorded_epochs() == list(range(1, 42))
    names = _all_complete(path, "epochs")
    assert names == [f"{e:06d}" for e in range(1, 42)], f"no temporary folders left, none lost: {names[:5]}"
    assert all((run.epoch_dir(e) / MANIFEST).exists() and is_complete(run.epoch_dir(e), ()) for e in range(1, 42))


FIT = textwrap.dedent("""
    import sys, json, torch
    torch.set_num_threads(1)
    import dvi_widget as dvi
    opts = json.loads(sys.argv[2])
    if len(sys.argv) > 3:   # a gate: each epoch waits for this file (keeps the fit running while tested)
        import os, time
        import dvi_widget.engine.fitting as fitting
        real = fitting.fit_epoch
        def gated(*a, **k):
            while not os.path.exists(sys.argv[3]):
                time.sleep(0.02)
            return real(*a, **k)
        fitting.fit_epoch = gated
    try:
        vis = dvi.fit(sys.argv[1], progress=False, **opts)
    except dvi.DVIError as e:
        print("DVIError:", e, file=sys.stderr)
        sys.exit(3)
    print("fitted", vis.epochs)
""")


def test_a_reader_reloading_beside_a_fit_never_breaks_it(tmp_path, head):
    feats, labels = _features(epochs=4)
    path = record_features(tmp_path / "run", feats, labels, head, progress=False)
    stop = tmp_path / "stop"
    reader = _start_reader(path, "fits", stop)
    try:
        fitter = subprocess.run([sys.executable, "-c", FIT, str(path), json.dumps(TINY_FIT)], env=ENV,
                                capture_output=True, text=True, timeout=400)
    finally:
        seen = _finish_reader(reader, stop)
    assert fitter.returncode == 0, fitter.stderr[-2000:]
    assert seen["errors"] == [], seen
    run = RunDir(path)
    assert run.fitted_epochs() == [1, 2, 3, 4]
    assert all(is_complete(run.fit_dir(e), ()) and (run.fit_dir(e) / MANIFEST).exists() for e in range(1, 5))
    assert [p.name for p in (path / "fits").iterdir() if p.name.startswith(".")] == []
    vis = dvi.Visualization(path)
    assert all(vis.embedding(e).shape == (300, 2) for e in vis.epochs)


def _wait_for_holder(path: Path, what: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = json.loads((path / HOLDER_NAME).read_text())
            if info.get("what") == what and info.get("pid") == proc.pid:
                return info
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, "the first writer ended before the second could start"
        assert time.monotonic() < deadline, "the first writer never took the lock"
        time.sleep(0.02)


def test_a_second_fit_at_the_same_time_gets_an_error_naming_the_first(tmp_path, head):
    feats, labels = _features(epochs=3)
    path = record_features(tmp_path / "run", feats, labels, head, progress=False)
    gate = tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", FIT, str(path), json.dumps(TINY_FIT), str(gate)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_for_holder(path, "dvi.fit", first)   # the first fit holds the run, waiting at its gate
        second = subprocess.run([sys.executable, "-c", FIT, str(path), json.dumps(TINY_FIT)], env=ENV,
                                capture_output=True, text=True, timeout=120)
        gate.touch()
        assert second.returncode == 3, second.stderr[-2000:]
        msg = second.stderr
        assert f"dvi.fit in process {first.pid}" in msg and info["host"] in msg and info["since"] in msg, msg
        assert "Traceback" not in msg
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert RunDir(path).fitted_epochs() == [1, 2, 3]


def test_a_fit_while_another_process_records_names_the_recorder(tmp_path, head):
    code = textwrap.dedent("""
        import sys, time, numpy as np, torch
        import dvi_widget as dvi
        rec = dvi.Recorder(sys.argv[1], labels=np.arange(60) % 3, progress=False)
        torch.manual_seed(0)
        rec.capture(features=np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32),
                    head=torch.nn.Linear(8, 3), epoch=1)
        print("ready", flush=True)
        sys.stdin.readline()      # hold the Recorder open until told to close
        rec.close()
        print("closed", flush=True)
        sys.stdin.readline()
    """)
    path = tmp_path / "run"
    recorder = subprocess.Popen([sys.executable, "-c", code, str(path)], env=ENV, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert recorder.stdout.readline().strip() == "ready"
        fitter = subprocess.run([sys.executable, "-c", FIT, str(path), json.dumps(TINY_FIT)], env=ENV,
                                capture_output=True, text=True, timeout=120)
        assert fitter.returncode == 3
        assert f"Recorder in process {recorder.pid}" in fitter.stderr, fitter.stderr
        recorder.stdin.write("\n")
        recorder.stdin.flush()
        assert recorder.stdout.readline().strip() == "closed"
        # closed: now the fit may write (the recorder process is still alive)
        fitter = subprocess.run([sys.executable, "-c", FIT, str(path), json.dumps(TINY_FIT)], env=ENV,
                                capture_output=True, text=True, timeout=300)
        assert fitter.returncode == 0, fitter.stderr[-2000:]
    finally:
        recorder.kill()
        recorder.wait()


def test_in_one_process_a_fit_writes_under_the_open_recorder_and_a_new_recorder_takes_over(tmp_path, head):
    feats, labels = _features(n=90, epochs=2)
    rec = dvi.Recorder(tmp_path / "run", labels=labels, progress=False)
    rec.capture(features=feats[0][1][:, :32], head=head, epoch=1)
    vis = dvi.fit(tmp_path / "run", progress=False, **TINY_FIT)     # same process: allowed
    assert vis.epochs == [1]
    again = dvi.Recorder(tmp_path / "run", labels=labels, progress=False)   # a re-run notebook cell
    with pytest.raises(dvi.DVIError, match="newer Recorder"):
        rec.capture(features=feats[1][1], head=head, epoch=2)
    again.capture(features=feats[1][1], head=head, epoch=2)
    again.close()
    rec.close()
    assert RunDir(tmp_path / "run").recorded_epochs() == [1, 2]
