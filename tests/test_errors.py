"""Bad input gets a DVIError whose message names the problem; damaged run files are named; nothing unpickles."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

import dvi_widget as dvi
from dvi_widget.demo import CLASSES
from dvi_widget.store.rundir import RunDir
from engine_support import FAST_FIT, TINY_FIT, make_cnn


@pytest.fixture
def tiny(mnist_tiny):
    x, labels, split, _ = mnist_tiny
    return x, labels, split


@pytest.fixture(scope="module")
def cnn():
    return make_cnn(0)


# ---- data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_features_with_nan_or_inf(tmp_path, digits_head, bad, kind):
    X, y, head = digits_head
    X = X.copy()
    X[[3, 7], 5] = bad
    with dvi.Recorder(tmp_path / "r", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match=rf"features contain {kind} values in 2 rows \(first: \[3, 7\]\)"):
            rec.capture(features=X, head=head)
        assert rec.epochs == [], "nothing is recorded"


def test_features_callable_returning_nan(tmp_path, tiny, cnn):
    x, labels, split = tiny
    with dvi.Recorder(tmp_path / "r", inputs=x, labels=labels, classes=CLASSES) as rec:
        with pytest.raises(dvi.DVIError, match="features contain NaN"):
            rec.capture(cnn, features=lambda b: cnn.features(b) * float("nan"), head=cnn.fc)


def test_mismatched_inputs_and_labels(tmp_path, tiny):
    x, labels, _ = tiny
    with pytest.raises(dvi.DVIError, match="different lengths: 299 inputs, 300 labels"):
        dvi.Recorder(tmp_path / "r", inputs=x[:-1], labels=labels, classes=CLASSES)
    assert not (tmp_path / "r").exists(), "nothing written before the check"


def test_features_array_with_the_wrong_number_of_rows(tmp_path, digits_head):
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "r", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match=r"features array has 1796 rows, the run has N=1797"):
            rec.capture(features=X[:-1], head=head)


def test_a_single_class(tmp_path):
    with pytest.raises(dvi.DVIError, match="single class"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(10, 4), labels=np.zeros(10, int), classes=["a", "b"])
    with pytest.raises(dvi.DVIError, match="at least 2 classes"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(10, 4), labels=np.zeros(10, int), classes=["a"])


def test_empty_data(tmp_path, digits_head):
    with pytest.raises(dvi.DVIError, match="empty"):
        dvi.Recorder(tmp_path / "r", inputs=torch.zeros(0, 1, 28, 28), labels=np.zeros(0, int), classes=CLASSES)
    with pytest.raises(dvi.DVIError, match="empty"):
        dvi.Recorder(tmp_path / "r", labels=[])
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "s", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match="empty"):
            rec.capture(features=np.zeros((len(y), 0), np.float32), head=head)


def test_labels_outside_the_class_list(tmp_path):
    labels = np.array([0, 1, 2, 3, 3])
    with pytest.raises(dvi.DVIError, match=r"labels outside range\(len\(classes\)\) = range\(3\): values \[3\]"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(5, 4), labels=labels, classes=["a", "b", "c"])
    with pytest.raises(dvi.DVIError, match=r"labels outside .* values \[-1\]"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(3, 4), labels=np.array([0, 1, -1]), classes=["a", "b"])
    with pytest.raises(dvi.DVIError, match="labels must be integers"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(3, 4), labels=np.array([0.0, 1.5, 1.0]))


def test_bad_split(tmp_path):
    with pytest.raises(dvi.DVIError, match=r"split values must be \"train\" or \"test\", got \['val'\]"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(3, 4), labels=[0, 1, 1], split=["train", "val", "test"])
    with pytest.raises(dvi.DVIError, match="no \"train\" samples"):
        dvi.Recorder(tmp_path / "r", inputs=torch.rand(2, 4), labels=[0, 1], split=["test", "test"])


def test_features_callable_returning_the_wrong_shape(tmp_path, tiny, cnn):
    x, labels, _ = tiny
    with dvi.Recorder(tmp_path / "r", inputs=x, labels=labels, classes=CLASSES) as rec:
        with pytest.raises(dvi.DVIError, match=r"features returned shape \(1, 64\) for a batch of 2 inputs"):
            rec.capture(cnn, features=lambda b: cnn.features(b)[:1], head=cnn.fc)
        with pytest.raises(dvi.DVIError, match="tuple"):
            rec.capture(cnn, features=lambda b: (cnn.features(b),), head=cnn.fc)
        with pytest.raises(dvi.DVIError, match="no layer named 'penultimate'"):
            rec.capture(cnn, features="penultimate", head=cnn.fc)
        assert rec.epochs == []


def test_a_head_that_does_not_accept_the_features(tmp_path, tiny, cnn, digits_head):
    x, labels, _ = tiny
    with dvi.Recorder(tmp_path / "r", inputs=x, labels=labels, classes=CLASSES) as rec:
        with pytest.raises(dvi.DVIError, match=r"head does not accept the features \(shape \(2, 64\)\)"):
            rec.capture(cnn, features=cnn.features, head=nn.Linear(32, 10))
        with pytest.raises(dvi.DVIError, match=r"head must return logits \(B, 10\) for 10 classes, got \(2, 3\)"):
            rec.capture(cnn, features=cnn.features, head=nn.Linear(64, 3))
    X, y, _ = digits_head
    with dvi.Recorder(tmp_path / "s", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match="head does not accept the features"):
            rec.capture(features=X, head=nn.Linear(10, 10))


def test_a_head_that_cannot_be_stored_without_code(tmp_path, digits_head):
    class Custom(nn.Module):
        def forward(self, h):
            return h[:, :10]
    X, y, _ = digits_head
    with dvi.Recorder(tmp_path / "r", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match="head contains a Custom layer"):
            rec.capture(features=X, head=Custom())


def test_missing_features_or_head(tmp_path, tiny, cnn, digits_head):
    x, labels, _ = tiny
    with dvi.Recorder(tmp_path / "r", inputs=x, labels=labels, classes=CLASSES) as rec:
        with pytest.raises(dvi.DVIError, match="head="):
            rec.capture(cnn, features=cnn.features)
        with pytest.raises(dvi.DVIError, match="features="):
            rec.capture(cnn, head=cnn.fc)
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "s", labels=y) as rec:
        with pytest.raises(dvi.DVIError, match="no inputs"):
            rec.capture(features=lambda b: b, head=head)


def test_capture_after_close(tmp_path, digits_head):
    X, y, head = digits_head
    rec = dvi.Recorder(tmp_path / "r", labels=y)
    rec.close()
    with pytest.raises(dvi.DVIError, match="Recorder is closed"):
        rec.capture(features=X, head=head)


def test_bad_epoch_numbers_for_capture(tmp_path, digits_head):
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "r", labels=y) as rec:
        for bad in (-1, 1.5, "3", True):
            with pytest.raises(dvi.DVIError, match="epoch must be a non-negative int"):
                rec.capture(features=X, head=head, epoch=bad)


def test_checkpoint_file_missing(tmp_path, tiny):
    x, labels, _ = tiny
    with dvi.Recorder(tmp_path / "r", inputs=x, labels=labels, classes=CLASSES) as rec:
        with pytest.raises(dvi.DVIError, match="checkpoint file not found: .*nope.pt"):
            rec.capture_checkpoints(make_cnn, [tmp_path / "nope.pt"], features="features", head="fc")


# ---- epochs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [99, 0, -1, "2", 2.0, True])
def test_an_unknown_epoch_lists_the_valid_ones(small_run, bad):
    for method in (small_run.embedding, small_run.background, small_run.predictions, small_run.background_extent):
        with pytest.raises(dvi.DVIError, match=re.escape(f"unknown epoch {bad!r}; valid epochs: [1, 2, 3]")):
            method(bad)
    with pytest.raises(dvi.DVIError, match="valid epochs: \\[1, 2, 3\\]"):
        small_run.project(bad, np.zeros((1, 64), np.float32))


def test_project_and_inverse_check_shapes(small_run):
    with pytest.raises(dvi.DVIError, match=r"features must have shape \(M, 64\) at epoch 1, got \(2, 5\)"):
        small_run.project(1, np.zeros((2, 5)))
    with pytest.raises(dvi.DVIError, match=r"points must have shape \(M, 2\), got \(4,\)"):
        small_run.inverse(1, np.zeros(4))
    with pytest.raises(dvi.DVIError, match="sample indices out of range"):
        small_run.thumbnails([0, 5000])


# ---- run directories ------------------------------------------------------------------------------
def test_a_run_directory_made_from_other_labels_or_classes(small_run_path, mnist_small):
    x, labels, split, _ = mnist_small
    with pytest.raises(dvi.DVIError, match="other labels"):
        dvi.Recorder(small_run_path, inputs=x, labels=np.roll(labels, 1), classes=CLASSES, split=split)
    with pytest.raises(dvi.DVIError, match="recorded with classes"):
        dvi.Recorder(small_run_path, inputs=x, labels=labels, classes=list("abcdefghij"), split=split)


def test_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(dvi.DVIError, match="not a dvi_widget run directory"):
        dvi.Recorder(tmp_path / "notes", inputs=torch.rand(3, 4), labels=[0, 1, 1], overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").exists(), "overwrite=True never deletes a folder that is not a run"
    with pytest.raises(dvi.DVIError, match="no run directory at"):
        dvi.fit(tmp_path / "absent")
    with pytest.raises(dvi.RunFileError, match="meta.json"):
        dvi.fit(tmp_path / "notes")


def test_fit_with_no_recorded_epochs(tmp_path):
    dvi.Recorder(tmp_path / "r", inputs=torch.rand(3, 4), labels=[0, 1, 1])
    with pytest.raises(dvi.DVIError, match="no epochs recorded"):
        dvi.fit(tmp_path / "r")


def assert_names(excinfo, path):
    assert isinstance(excinfo.value, dvi.RunFileError)
    assert str(path) in str(excinfo.value), f"message does not name {path}: {excinfo.value}"


def test_a_truncated_fit_file_is_named(small_run_copy):
    f = small_run_copy / "fits" / "000002" / "fit.npz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    vis = dvi.Visualization(small_run_copy)
    with pytest.raises(dvi.RunFileError, match="damaged run file") as e:
        vis.embedding(2)
    assert_names(e, f)
    assert vis.embedding(1).shape == (1000, 2), "other epochs still load"


def test_a_missing_metrics_file_is_named(small_run_copy):
    f = small_run_copy / "fits" / "000003" / "metrics.json"
    f.unlink()
    with pytest.raises(dvi.RunFileError, match="missing run file") as e:
        dvi.Visualization(small_run_copy).metrics
    assert_names(e, f)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": "something else"}', b"\xff\xfe"])
def test_a_corrupt_meta_file_is_named(small_run_copy, content):
    f = small_run_copy / "meta.json"
    f.write_bytes(content)
    with pytest.raises(dvi.RunFileError) as e:
        dvi.Visualization(small_run_copy)
    assert_names(e, f)


@pytest.mark.parametrize("name", ["labels.npy", "split.npy", "thumbnails.npy"])
def test_missing_or_damaged_header_arrays_are_named(small_run_copy, name):
    f = small_run_copy / name
    f.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(dvi.RunFileError) as e:
        vis = dvi.Visualization(small_run_copy)
        vis.thumbnails([0])
    assert_names(e, f)
    f.unlink()
    with pytest.raises(dvi.RunFileError, match="missing run file") as e:
        vis = dvi.Visualization(small_run_copy)
        vis.thumbnails([0])
    assert_names(e, f)


def test_labels_that_do_not_match_the_run_are_named(small_run_copy):
    f = small_run_copy / "labels.npy"
    labels = np.load(f)
    np.save(f, np.roll(labels, 1))
    with pytest.raises(dvi.RunFileError, match="label hash") as e:
        dvi.Visualization(small_run_copy)
    assert_names(e, f)


@pytest.mark.parametrize("name", ["features.npz", "outputs.npz", "head.npz", "head.json"])
def test_damaged_capture_files_are_named_by_fit(small_run_copy, name):
    shutil.rmtree(small_run_copy / "fits" / "000003")
    f = small_run_copy / "epochs" / "000003" / name
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(dvi.RunFileError) as e:
        dvi.fit(small_run_copy, progress=False, **FAST_FIT)
    assert_names(e, f)


@pytest.mark.parametrize("name", ["model.npz", "model.json"])
def test_a_missing_model_file_is_named(small_run_copy, name):
    f = small_run_copy / "fits" / "000001" / name
    f.unlink()
    with pytest.raises(dvi.RunFileError, match="missing run file") as e:
        dvi.Visualization(small_run_copy).project(1, np.zeros((1, 64), np.float32))
    assert_names(e, f)


# ---- never unpickle ------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates a file: the test checks that it never happens."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles_a_replaced_npy(small_run_copy, tmp_path):
    marker = tmp_path / "pwned"
    f = small_run_copy / "labels.npy"
    np.save(f, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(dvi.RunFileError) as e:
        dvi.Visualization(small_run_copy)
    assert_names(e, f)
    assert not marker.exists()


@pytest.mark.parametrize("rel", ["fits/000002/fit.npz", "fits/000002/model.npz", "epochs/000002/head.npz",
                                 "epochs/000002/outputs.npz"])
def test_loading_never_unpickles_a_replaced_npz(small_run_copy, tmp_path, rel):
    marker = tmp_path / "pwned"
    f = small_run_copy / rel
    arrays = dict(np.load(f, allow_pickle=False))
    first = sorted(arrays)[0]
    arrays[first] = np.array([Payload(marker)], dtype=object)
    np.savez(f, **arrays)
    vis = dvi.Visualization(small_run_copy)
    with pytest.raises(dvi.RunFileError) as e:
        vis.embedding(2)
        vis.project(2, np.zeros((1, 64), np.float32))
        vis.head(2)
        vis.predictions(2)
    assert_names(e, f)
    assert not marker.exists()


def test_a_damaged_npz_leaves_no_open_file(tmp_path):
    import gc
    import sys
    import warnings

    from dvi_widget.store.rundir import load_npz
    f = tmp_path / "x.npz"
    np.savez(f, a=np.arange(10))
    f.write_bytes(f.read_bytes()[:60])
    leaked, hook = [], sys.unraisablehook
    sys.unraisablehook = leaked.append       # a file closed by the garbage collector warns from __del__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            with pytest.raises(dvi.RunFileError, match="damaged run file"):
                load_npz(f)
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not leaked, [str(u.exc_value) for u in leaked]


# ---- sizes in a file are checked before anything is allocated -----------------------------------------
MEASURE = r"""
import json, resource, sys, numpy as np, torch
torch.set_num_threads(1)
import dvi_widget as dvi
vis = dvi.Visualization(sys.argv[1])
call = sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if call == "head":
        vis.head(2)
    elif call == "project":
        vis.project(2, np.zeros((1, 64), np.float32))
    else:
        vis.embedding(2)
    result = "loaded"
except dvi.RunFileError as e:
    result = "RunFileError: " + str(e)
except Exception as e:
    result = type(e).__name__ + ": " + str(e)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"result": result, "grown": grown}))
"""


def _measure(path, call):
    import json
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", MEASURE, str(path), call], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_head_json_declaring_a_huge_layer_is_refused_before_allocating(small_run_copy):
    import json
    f = small_run_copy / "epochs" / "000002" / "head.json"
    d = json.loads(f.read_text())
    d["layers"][0]["args"].update(in_features=20000, out_features=20000)   # 1.6 GB if believed
    f.write_text(json.dumps(d))
    out = _measure(small_run_copy, "head")
    assert out["result"].startswith("RunFileError") and str(f) in out["result"], out
    assert "does not match its stored weights" in out["result"]
    assert out["grown"] < 100e6, f"grew by {out['grown'] / 1e6:.0f} MB"


def test_a_model_json_declaring_a_huge_width_is_refused_before_allocating(small_run_copy):
    import json
    f = small_run_copy / "fits" / "000002" / "model.json"
    d = json.loads(f.read_text())
    d["width"] = 20000                                                     # GBs of weights if believed
    f.write_text(json.dumps(d))
    out = _measure(small_run_copy, "project")
    # named: model.json itself, or model.npz with the sizes model.json declares
    assert out["result"].startswith("RunFileError") and str(f.parent) in out["result"], out
    assert "model.json" in out["result"], out
    assert out["grown"] < 100e6, f"grew by {out['grown'] / 1e6:.0f} MB"


def test_a_zip_bomb_fit_file_is_refused_before_it_is_opened(small_run_copy):
    import zipfile
    f = small_run_copy / "fits" / "000002" / "fit.npz"
    arrays = dict(np.load(f, allow_pickle=False))
    rows = 300 * 2 ** 20 // 8                                              # 300 MB of float32 (N, 2) zeros
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 2), np.float32))
    header["shape"] = (rows, 2)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, a in arrays.items():
            if name == "embedding":
                continue
            with z.open(name + ".npy", "w") as m:
                np.lib.format.write_array(m, a, allow_pickle=False)
        with z.open("embedding.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array_header_1_0(m, header)
            chunk = bytes(2 ** 22)
            for _ in range(rows * 8 // len(chunk)):
                m.write(chunk)
    assert f.stat().st_size < 3e6
    out = _measure(small_run_copy, "embedding")
    assert out["result"].startswith("RunFileError") and str(f) in out["result"], out
    assert "zip bomb" in out["result"] or "limit" in out["result"]
    assert out["grown"] < 100e6, f"grew by {out['grown'] / 1e6:.0f} MB"


def test_an_npy_whose_header_declares_more_than_it_holds_is_named(small_run_copy):
    f = small_run_copy / "thumbnails.npy"
    t = np.load(f)
    with open(f, "wb") as out:
        header = np.lib.format.header_data_from_array_1_0(t)
        header["shape"] = (1000, 4096, 4096)                             # 16 GB declared
        np.lib.format.write_array_header_1_0(out, header)
        out.write(t.tobytes()[:1000])
    with pytest.raises(dvi.RunFileError, match="limit|declares") as e:
        dvi.Visualization(small_run_copy).thumbnails([0])
    assert_names(e, f)


# ---- bad content in well-formed files names the file ------------------------------------------
def _save_like(f, **changes):
    arrays = dict(np.load(f, allow_pickle=False))
    arrays.update(changes)
    np.savez(f, **arrays)


def test_a_split_code_other_than_train_or_test_is_named(small_run_copy):
    f = small_run_copy / "split.npy"
    s = np.load(f)
    s[3] = 7
    np.save(f, s)
    with pytest.raises(dvi.RunFileError, match="split codes") as e:
        dvi.Visualization(small_run_copy)
    assert_names(e, f)


@pytest.mark.parametrize("key", ["label_hash", "n", "classes"])
def test_a_meta_json_lacking_a_key_is_named(small_run_copy, key):
    import json
    f = small_run_copy / "meta.json"
    d = json.loads(f.read_text())
    del d[key]
    f.write_text(json.dumps(d))
    with pytest.raises(dvi.RunFileError, match=key) as e:
        dvi.Visualization(small_run_copy)
    assert_names(e, f)


def test_a_model_json_lacking_a_key_is_named(small_run_copy):
    import json
    f = small_run_copy / "fits" / "000001" / "model.json"
    d = json.loads(f.read_text())
    d.pop(sorted(d)[0])
    f.write_text(json.dumps(d))
    with pytest.raises(dvi.RunFileError) as e:
        dvi.Visualization(small_run_copy).project(1, np.zeros((1, 64), np.float32))
    assert_names(e, f)


@pytest.mark.parametrize("content", ["[1, 2]", '{"ppr": "high"}', '"text"'])
def test_metrics_that_are_not_an_object_of_numbers_are_named(small_run_copy, content):
    f = small_run_copy / "fits" / "000002" / "metrics.json"
    f.write_text(content)
    with pytest.raises(dvi.RunFileError, match="metric") as e:
        dvi.Visualization(small_run_copy).metrics
    assert_names(e, f)


def test_predictions_outside_the_classes_are_named(small_run_copy):
    f = small_run_copy / "epochs" / "000002" / "outputs.npz"
    p = np.load(f)["predictions"].copy()
    p[0] = 300
    _save_like(f, predictions=p)
    with pytest.raises(dvi.RunFileError, match="outside range") as e:
        dvi.Visualization(small_run_copy).predictions(2)
    assert_names(e, f)


def test_thumbnails_of_another_size_are_named(small_run_copy):
    f = small_run_copy / "thumbnails.npy"
    np.save(f, np.load(f)[:500])
    with pytest.raises(dvi.RunFileError, match="thumbnails must be") as e:
        dvi.Visualization(small_run_copy).thumbnails([0])
    assert_names(e, f)


def test_nan_in_recorded_features_is_named_by_fit(small_run_copy):
    from dvi_widget.store.rundir import RunDir
    RunDir(small_run_copy).remove_fits([3])
    f = small_run_copy / "epochs" / "000003" / "features.npz"
    h = np.load(f)["features"].copy()
    h[5, 2] = np.nan
    _save_like(f, features=h)
    with pytest.raises(dvi.RunFileError, match="NaN") as e:
        dvi.fit(small_run_copy, progress=False)   # the options the run was fitted with
    assert_names(e, f)


def test_a_pickled_array_is_refused_without_numpys_unsafe_advice(small_run_copy):
    f = small_run_copy / "epochs" / "000002" / "outputs.npz"
    _save_like(f, predictions=np.array([{"a": 1}], dtype=object))
    with pytest.raises(dvi.RunFileError) as e:
        dvi.Visualization(small_run_copy).predictions(2)
    assert_names(e, f)
    assert "allow_pickle" not in str(e.value) and "unsafe" not in str(e.value)
    assert "never loads" in str(e.value)
