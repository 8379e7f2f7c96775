"""Bokeh reports of a run: ``vis.report()``.

A grid of four figures over the epochs:

- faithfulness of the map: ``nn_rate@15``, ``boundary_nn_rate@15``, ``ppr``,
  ``map_consistency`` (from ``vis.metrics``);
- the classifier's accuracy on the recorded training and test samples;
- per-class accuracy (the predictions of each epoch against the labels);
- prediction flips: how many samples changed their predicted class since the
  previous recorded epoch.

Saved pages use ``bokeh.resources.INLINE`` (BokehJS inside the page), so they
open offline. In a notebook, call ``bokeh.io.output_notebook(INLINE)`` once,
then ``bokeh.io.show(vis.report())``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..store.atomic import write_text_atomic
from ..errors import DVIError

FAITHFULNESS = ("nn_rate@15", "boundary_nn_rate@15", "ppr", "map_consistency")
ACCURACY = ("accuracy/train", "accuracy/test")
_LINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def report_data(vis: Any) -> dict[str, Any]:
    """The numbers the report plots, as plain arrays (also handy for a table or a test).

    ``epochs``; ``metrics[name]`` per epoch (NaN where an epoch lacks it);
    ``class_accuracy`` (E, C) from ``vis.predictions(e)`` vs ``vis.labels`` (NaN for a class with no
    samples); ``flips`` (E,) samples whose prediction changed since the previous epoch (0 at the first).
    """
    epochs = [int(e) for e in vis.epochs]
    if not epochs:
        raise DVIError("no fitted epochs to report on")
    metrics = vis.metrics
    names = list(FAITHFULNESS) + list(ACCURACY) + ["accuracy"]
    series = {n: np.array([float(metrics.get(e, {}).get(n, np.nan)) for e in epochs]) for n in names}
    labels = np.asarray(vis.labels).astype(np.int64)
    C = len(vis.classes)
    counts = np.bincount(labels, minlength=C).astype(np.float64)
    acc = np.full((len(epochs), C), np.nan)
    flips = np.zeros(len(epochs), dtype=np.int64)
    prev = None
    for j, e in enumerate(epochs):
        pred = np.asarray(vis.predictions(e)).astype(np.int64)
        right = np.bincount(labels[pred == labels], minlength=C).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc[j] = np.where(counts > 0, right / counts, np.nan)
        if prev is not None:
            flips[j] = int((pred != prev).sum())
        prev = pred
    return {"epochs": epochs, "metrics": series, "class_accuracy": acc, "flips": flips,
            "classes": [str(c) for c in vis.classes]}


def report(vis: Any, path: str | os.PathLike | None = None, *, width: int = 460, height: int = 300,
           title: str | None = None):
    """A Bokeh layout (a 2 x 2 grid) of the run's faithfulness, accuracy, per-class accuracy and flips.

    With ``path``, also saves it as one offline HTML page (inline BokehJS).
    """
    from bokeh.layouts import column, gridplot
    from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem, Paragraph  # Paragraph: text, not HTML
    from bokeh.palettes import Category10, Category20
    from bokeh.plotting import figure

    data = report_data(vis)
    epochs = data["epochs"]
    x_range = (epochs[0] - 0.5, epochs[-1] + 0.5) if len(epochs) > 1 else (epochs[0] - 1, epochs[0] + 1)

    def fig(name: str, title_: str, y_label: str, y_range=(0, 1.02)):
        f = figure(name=name, title=title_, width=width, height=height, x_range=x_range, y_range=y_range,
                   x_axis_label="epoch", y_axis_label=y_label, toolbar_location="right",
                   tools="pan,box_zoom,wheel_zoom,reset,save")
        f.xaxis.ticker = epochs if len(epochs) <= 20 else f.xaxis.ticker
        return f

    def lines(f, keys, labels_, source_name):
        src = ColumnDataSource({"epoch": epochs, **{k: data["metrics"][k] for k in keys}}, name=source_name)
        items = []
        for i, (k, lab) in enumerate(zip(keys, labels_)):
            c = _LINE_COLORS[i % len(_LINE_COLORS)]
            r1 = f.line("epoch", k, source=src, line_width=2, color=c)
            r2 = f.scatter("epoch", k, source=src, size=6, color=c)
            items.append(LegendItem(label=lab, renderers=[r1, r2]))
        f.add_layout(Legend(items=items, location="bottom_right", click_policy="hide"))
        f.add_tools(HoverTool(tooltips=[("epoch", "@epoch")] + [(lab, f"@{{{k}}}{{0.000}}")
                                                                for k, lab in zip(keys, labels_)],
                              mode="vline", renderers=[items[0].renderers[0]]))
        return f

    faith = lines(fig("faithfulness", "Faithfulness of the map", "rate"), list(FAITHFULNESS),
                  ["nn_rate@15", "boundary nn_rate@15", "ppr", "map consistency"], "faithfulness_data")
    accuracy = lines(fig("accuracy", "Classifier accuracy", "accuracy"), list(ACCURACY),
                     ["train", "test"], "accuracy_data")

    C = len(data["classes"])
    palette = (Category10[10] if C <= 10 else Category20[20]) if C <= 20 else None
    colors = [("#%02x%02x%02x" % tuple(int(v) for v in c)) for c in np.asarray(vis.colors).reshape(-1, 3)]
    per_class = fig("class_accuracy", "Accuracy per class (all recorded samples)", "accuracy")
    cls_cols = {f"c{c}": data["class_accuracy"][:, c] for c in range(C)}
    src = ColumnDataSource({"epoch": epochs, **cls_cols}, name="class_accuracy_data")
    items = []
    for c in range(C):
        color = colors[c] if c < len(colors) else (palette[c % len(palette)] if palette else "#777777")
        r = per_class.line("epoch", f"c{c}", source=src, line_width=1.6, color=color)
        per_class.scatter("epoch", f"c{c}", source=src, size=4, color=color)
        items.append(LegendItem(label=data["classes"][c][:30], renderers=[r]))
    if C <= 20:
        per_class.add_layout(Legend(items=items, location="center", click_policy="hide",
                                    label_text_font_size="8pt", spacing=0, padding=4), "right")

    flips = fig("flips", "Prediction flips (changed since the previous epoch)", "samples",
                y_range=(0, max(1, int(data["flips"].max())) * 1.1))
    fsrc = ColumnDataSource({"epoch": epochs, "flips": data["flips"]}, name="flips_data")
    flips.vbar(x="epoch", top="flips", source=fsrc, width=0.7, color="#607d8b")
    flips.add_tools(HoverTool(tooltips=[("epoch", "@epoch"), ("flips", "@flips")]))

    summary = getattr(vis, "summary", {}) or {}
    stab = summary.get("stab_spearman")
    head = title or "DVI report"
    sub = f"{len(epochs)} epochs, {len(vis.labels)} samples, {C} classes"
    if stab is not None and np.isfinite(stab):
        sub += f"; stab_spearman {stab:.3f}"
    grid = gridplot([[faith, accuracy], [per_class, flips]], toolbar_location="right", merge_tools=False)
    layout = column(Paragraph(text=head, name="title", styles={"font-size": "1.3em", "font-weight": "bold"}),
                    Paragraph(text=sub, name="subtitle"), grid, name="dvi_report")
    if path is not None:
        save_report(layout, path, title=head)
    return layout


def save_report(layout: Any, path: str | os.PathLike, title: str = "DVI report") -> Path:
    """Save a report (or any Bokeh layout) as one HTML page with BokehJS inline (works offline)."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    if not hasattr(layout, "select"):  # a Visualization: build its report first
        layout = report(layout)
    return write_text_atomic(path, file_html(layout, INLINE, title=title))
