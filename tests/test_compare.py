"""dvi.compare(vis_a, vis_b): two runs of the same samples side by side, linked.

Runs of different samples are refused before any widget is built, with a message naming each
run's N and label hash; epochs line up by number, an epoch one run lacks is shown with the
other's nearest and the header says so; selection and view follow each other both ways.
"""
from __future__ import annotations

import numpy as np
import pytest

import dvi_widget as dvi
from dvi_widget.analysis import EpochAlignment
from dvi_widget.store.rundir import label_hash
from engine_support import TINY_FIT, record_features


def feature_run(path, X, y, head, epochs, seed=0):
    rng = np.random.default_rng(seed)
    feats = [(e, (X + 0.02 * e * rng.standard_normal(X.shape)).astype(np.float32)) for e in epochs]
    return dvi.fit(record_features(path, feats, y, head), progress=False, **TINY_FIT)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, digits_head):
    """Two features-only runs of the same 300 digits: epochs 1, 2, 3 and epochs 2, 4."""
    X, y, head = digits_head
    tmp_path = tmp_path_factory.mktemp("two_runs")
    return (feature_run(tmp_path / "a", X[:300], y[:300], head, (1, 2, 3)),
            feature_run(tmp_path / "b", X[:300], y[:300], head, (2, 4), seed=1))


def test_runs_of_different_samples_are_refused(small_run, tiny_feature_run):
    other = dvi.Visualization(tiny_feature_run)
    with pytest.raises(dvi.DVIError) as err:
        dvi.compare(small_run, other)
    msg = str(err.value)
    assert "different samples" in msg and "N=1000" in msg and "N=300" in msg
    assert label_hash(small_run.labels) in msg and label_hash(other.labels) in msg


def test_same_size_with_other_labels_is_refused_unless_asked(tmp_path, digits_head):
    X, y, head = digits_head
    a = feature_run(tmp_path / "a", X[:300], y[:300], head, (1,))
    noisy = y[:300].copy()
    noisy[:30] = (noisy[:30] + 1) % 10
    b = feature_run(tmp_path / "b", X[:300], noisy, head, (1,))
    with pytest.raises(dvi.DVIError, match=r"different labels \(30 of 300 samples differ\).*same_labels=False"):
        dvi.compare(a, b)
    comp = dvi.compare(a, b, same_labels=False)
    comp.a.select([1, 2])
    assert comp.b.selected == [1, 2]


def test_epochs_line_up_by_number(two_runs):
    a, b = two_runs
    al = EpochAlignment(a.epochs, b.epochs)
    assert (al.common, al.only_a, al.only_b) == ([2], [1, 3], [4])
    assert al.partner(2, "a") == (2, True)
    assert al.partner(3, "a") == (2, False)      # 2 and 4 are equally near: the earlier
    assert al.partner(4, "b") == (3, False)
    assert "epochs only in run A: [1, 3]" in al.note() and "epochs only in run B: [4]" in al.note()


def test_compare_links_epoch_selection_and_view(two_runs):
    a, b = two_runs
    comp = dvi.compare(a, b, names=("clean", "other seed"))
    wa, wb = comp.a, comp.b
    assert (wa.epoch, wb.epoch) == (2, 2), "opens on the last epoch both runs have"
    wa.epoch = 3
    assert wb.epoch == 2 and "run B has no epoch 3: showing its epoch 2" in comp.note
    wb.epoch = 4
    assert wa.epoch == 3 and "run A has no epoch 4: showing its epoch 3" in comp.note
    wa.epoch = 2
    assert wb.epoch == 2 and "has no epoch" not in comp.note
    wa.select([3, 1, 4])
    assert wb.selected == [1, 3, 4]
    wb.select([])
    assert wa.selected == []
    wa.view = {"cx": 0.5, "cy": -0.25, "zoom": 2.0}
    assert wb.view == wa.view
    comp.link.unlink()
    wa.select([7])
    assert wb.selected == []


def test_view_link_is_optional(two_runs):
    comp = dvi.compare(*two_runs, link_view=False)
    comp.a.view = {"cx": 1.0, "cy": 1.0, "zoom": 3.0}
    assert comp.b.view == {}
    comp.a.select([5])
    assert comp.b.selected == [5]
