"""Widget state as data: save_state / load_state round trip, refusal of another run's state,
atomic writes (an unwritable path is a clear error and leaves no file behind)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import dvi_widget as dvi
from dvi_widget.errors import DVIError
from dvi_widget.widget.widget import DVIWidget
from engine_support import TINY_FIT, record_features


def _dressed(vis):
    w = DVIWidget(vis)
    w.epoch = vis.epochs[1]
    w.select([3, 17, 400, 999])
    w.color_by = "correct"
    w.split_filter = "test"
    w.hidden_classes = [2, 5]
    w.only_misclassified = True
    w.show_trails = True
    w.view = {"cx": 0.5, "cy": -1.25, "zoom": 2.5}
    return w


def test_round_trip(small_run, tmp_path):
    w = _dressed(small_run)
    path = w.save_state(tmp_path / "state.json")
    state = json.loads(path.read_text())
    assert state["run_id"] == small_run.run_id and state["epoch"] == small_run.epochs[1]
    w2 = DVIWidget.load_state(path, small_run)
    assert isinstance(w2, DVIWidget) and w2 is not w
    assert w2.epoch == w.epoch
    assert w2.selected == [3, 17, 400, 999]
    for name in ("color_by", "split_filter", "hidden_classes", "only_misclassified", "only_flipped", "show_trails"):
        assert getattr(w2, name) == getattr(w, name), name
    assert w2.view == {"cx": 0.5, "cy": -1.25, "zoom": 2.5}
    # and through the public module-level name too
    w3 = dvi.DVIWidget.load_state(str(path), small_run)
    assert w3.selected == w2.selected


def test_state_is_plain_json(small_run, tmp_path):
    w = _dressed(small_run)
    state = json.loads(w.save_state(tmp_path / "s.json").read_text())
    assert set(state) >= {"run_id", "epoch", "selected", "filters", "view"}
    assert state["selected"] == [3, 17, 400, 999]
    assert state["filters"]["hidden_classes"] == [2, 5]


def test_refuses_state_of_another_run(small_run, tmp_path, digits_head):
    X, y, head = digits_head
    other = record_features(tmp_path / "other", [(1, X[:200]), (2, X[:200] * 1.01)], y[:200], head)
    other_vis = dvi.fit(other, progress=False, **TINY_FIT)
    path = DVIWidget(other_vis).save_state(tmp_path / "other.json")
    with pytest.raises(DVIError) as err:
        DVIWidget.load_state(path, small_run)
    msg = str(err.value)
    assert "another run" in msg and other_vis.run_id in msg and small_run.run_id in msg
    assert "200 samples in the file, 1000 in this run" in msg


def test_refuses_edited_run_id_and_bad_files(small_run, tmp_path):
    path = DVIWidget(small_run).save_state(tmp_path / "s.json")
    state = json.loads(path.read_text())
    state["run_id"] = "0000000000000000-10"
    path.write_text(json.dumps(state))
    with pytest.raises(DVIError, match="run id '0000000000000000-10' in the file"):
        DVIWidget.load_state(path, small_run)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(DVIError, match="not a dvi_widget state file"):
        DVIWidget.load_state(tmp_path / "junk.json", small_run)
    with pytest.raises(DVIError, match="no widget state file"):
        DVIWidget.load_state(tmp_path / "missing.json", small_run)
    state = json.loads(DVIWidget(small_run).save_state(tmp_path / "e.json").read_text())
    state["epoch"] = 99
    (tmp_path / "e.json").write_text(json.dumps(state))
    with pytest.raises(DVIError, match=r"epoch 99.*valid epochs: \[1, 2, 3\]"):
        DVIWidget.load_state(tmp_path / "e.json", small_run)


def test_unwritable_paths_are_clear_errors_and_leave_nothing(small_run, tmp_path):
    w = DVIWidget(small_run)
    with pytest.raises(DVIError, match="does not exist"):
        w.save_state(tmp_path / "no" / "such" / "folder" / "s.json")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(DVIError, match="not a folder"):
        w.save_state(a_file / "s.json")
    with pytest.raises(DVIError, match="is a folder"):
        w.save_state(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["plain.txt"]


def test_failure_mid_write_keeps_the_old_file(small_run, tmp_path, monkeypatch):
    w = DVIWidget(small_run)
    path = w.save_state(tmp_path / "s.json")
    before = path.read_bytes()
    import dvi_widget.outputs.state as state_mod

    def broken(_w):
        raise RuntimeError("boom while serialising")
    monkeypatch.setattr(state_mod, "widget_state", broken)
    with pytest.raises(RuntimeError):
        w.save_state(path)
    assert path.read_bytes() == before

    from dvi_widget.store.atomic import write_atomic

    def half(f):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")
    with pytest.raises(DVIError, match="No space left on device"):
        write_atomic(path, half)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


@pytest.mark.parametrize("field, value", [("version", "x"), ("epoch", [1]), ("view", [1, 2]),
                                          ("selected", "123"), ("selected", [1.5]), ("filters", [])])
def test_a_state_file_with_a_field_of_the_wrong_type_is_named(small_run, tmp_path, field, value):
    path = tmp_path / "s.json"
    _dressed(small_run).save_state(path)
    state = json.loads(path.read_text())
    state[field] = value
    path.write_text(json.dumps(state))
    with pytest.raises(dvi.RunFileError, match=f"state field '{field}'") as e:
        DVIWidget.load_state(path, small_run)
    assert str(path) in str(e.value)
