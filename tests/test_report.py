"""Bokeh report: the figures hold the Visualization's metrics, per-class accuracy and flips; saved
pages carry BokehJS inline."""
from __future__ import annotations

import re

import numpy as np
import pytest

from dvi_widget.errors import DVIError
from dvi_widget.outputs.report import FAITHFULNESS, report_data


def _source(layout, name):
    src = layout.select_one({"name": name})
    assert src is not None, name
    return src.data


def test_report_figures_match_metrics(small_run):
    layout = small_run.report()
    for fig in ("faithfulness", "accuracy", "class_accuracy", "flips"):
        assert layout.select_one({"name": fig}) is not None, fig
    epochs = small_run.epochs
    metrics = small_run.metrics
    faith = _source(layout, "faithfulness_data")
    assert list(faith["epoch"]) == epochs
    for name in FAITHFULNESS:
        np.testing.assert_allclose(faith[name], [metrics[e][name] for e in epochs])
    acc = _source(layout, "accuracy_data")
    for name in ("accuracy/train", "accuracy/test"):
        np.testing.assert_allclose(acc[name], [metrics[e][name] for e in epochs])


def test_per_class_accuracy_and_flips_from_predictions(small_run):
    layout = small_run.report()
    labels = small_run.labels
    per = _source(layout, "class_accuracy_data")
    flips = _source(layout, "flips_data")
    prev = None
    for j, e in enumerate(small_run.epochs):
        pred = small_run.predictions(e)
        for c in range(len(small_run.classes)):
            mask = labels == c
            assert per[f"c{c}"][j] == pytest.approx((pred[mask] == c).mean())
        assert flips["flips"][j] == (0 if prev is None else int((pred != prev).sum()))
        prev = pred
    # overall accuracy is the count-weighted mean of the per-class accuracies
    data = report_data(small_run)
    counts = np.bincount(labels, minlength=len(small_run.classes))
    for j, e in enumerate(small_run.epochs):
        assert (data["class_accuracy"][j] * counts).sum() / counts.sum() == pytest.approx(
            small_run.metrics[e]["accuracy"], abs=1e-6)


def test_saved_report_is_offline(small_run, tmp_path):
    path = tmp_path / "report.html"
    small_run.report(path=path)
    text = path.read_text()
    assert "Bokeh" in text and len(text) > 500_000  # BokehJS itself is in the page
    assert not re.search(r"<script[^>]+src=", text), "no external scripts"
    assert not re.search(r"<link[^>]+href=[\"']https?:", text)


def test_report_unwritable(small_run, tmp_path):
    with pytest.raises(DVIError, match="does not exist"):
        small_run.report(path=tmp_path / "nope" / "r.html")
    assert list(tmp_path.iterdir()) == []
