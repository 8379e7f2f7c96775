"""Widget state as data: ``w.save_state(path)`` and ``DVIWidget.load_state(path, vis)``.

A state file is a small JSON document: the epoch shown, the selected sample
indices, the filters (colour, split, hidden classes, misclassified / flipped
only, trails) and the view (centre and zoom). It names the run it was made
from (``vis.run_id``: a hash of the labels and the number of classes) and its
sample count, and loading it into a widget of another run is refused with a
message naming the mismatch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import traitlets

from ..store.atomic import write_text_atomic
from ..errors import DVIError, RunFileError

FORMAT = "dvi_widget.state"
VERSION = 1

#: Widget traits that make up the "filters" part of the state (applied in this order: the colouring
#: before the statistic's range filter, which belongs to it).
FILTER_TRAITS = ("color_by", "split_filter", "hidden_classes", "only_misclassified", "only_flipped", "show_trails",
                 "dynamics_filter", "point_size", "point_opacity")


def widget_state(w: Any) -> dict:
    """The state of widget ``w`` as a JSON-able dict."""
    vis = w.vis
    filters = {}
    for name in FILTER_TRAITS:
        if w.has_trait(name):
            v = getattr(w, name)
            filters[name] = list(v) if isinstance(v, (list, tuple)) else dict(v) if isinstance(v, dict) else v
    view = dict(getattr(w, "view", {}) or {})
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": str(getattr(vis, "run_id", "")),
        "n_samples": int(len(vis.labels)),
        "classes": [str(c) for c in vis.classes],
        "epoch": None if w.epoch is None else int(w.epoch),
        "selected": [int(i) for i in w.selected],
        "filters": filters,
        "view": {k: float(v) for k, v in view.items() if isinstance(v, (int, float))},
    }


def save_state(w: Any, path: str | os.PathLike) -> Path:
    """Write ``w``'s state (epoch, selection, filters, view) to ``path`` as JSON."""
    return write_text_atomic(path, json.dumps(widget_state(w), indent=1) + "\n")


def read_state(path: str | os.PathLike) -> dict:
    """Read and check a state file (format, version, fields); no run check yet."""
    p = Path(path)
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DVIError(f"no widget state file at {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DVIError(f"{p} is not a dvi_widget state file: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DVIError(f"{p} is not a dvi_widget state file (no \"format\": \"{FORMAT}\")")
    _check_fields(state, p)
    if state.get("version", 0) > VERSION:
        raise DVIError(f"{p} was written by a newer dvi_widget (state version {state.get('version')}); "
                       f"this one reads version {VERSION}")
    return state


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_fields(state: dict, p: Path) -> None:
    """Each field of a state file has the type it is written with; anything else names the file."""
    def bad(field: str, want: str) -> RunFileError:
        return RunFileError(p, f"state field {field!r} must be {want}, got {str(state.get(field))[:60]}")
    if not _is_int(state.get("version", 0)):
        raise bad("version", "an integer")
    if state.get("epoch") is not None and not _is_int(state["epoch"]):
        raise bad("epoch", "an epoch number or null")
    if not isinstance(state.get("run_id", ""), str):
        raise bad("run_id", "a string")
    if not _is_int(state.get("n_samples", 0)):
        raise bad("n_samples", "an integer")
    if "classes" in state and not (isinstance(state["classes"], list) and all(isinstance(c, str) for c in state["classes"])):
        raise bad("classes", "a list of names")
    sel = state.get("selected", [])
    if not isinstance(sel, list) or not all(_is_int(i) for i in sel):
        raise bad("selected", "a list of sample indices")
    filters = state.get("filters", {})
    if filters is not None and not isinstance(filters, dict):
        raise bad("filters", "an object")
    view = state.get("view", {})
    if view is not None and not (isinstance(view, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in view.values())):
        raise bad("view", "an object of numbers (centre and zoom)")


def check_run(state: dict, vis: Any, path: str | os.PathLike = "state file") -> None:
    """Refuse a state made from another run, naming what differs."""
    run_id = str(getattr(vis, "run_id", ""))
    n = int(len(vis.labels))
    problems = []
    if state.get("run_id") != run_id:
        problems.append(f"run id {state.get('run_id')!r} in the file, {run_id!r} in this Visualization "
                        f"({vis.path if hasattr(vis, 'path') else vis})")
    if int(state.get("n_samples", -1)) != n:
        problems.append(f"{state.get('n_samples')} samples in the file, {n} in this run")
    classes = [str(c) for c in vis.classes]
    if "classes" in state and list(state["classes"]) != classes:
        problems.append(f"classes {state['classes'][:5]}... in the file, {classes[:5]}... in this run")
    if problems:
        raise DVIError(f"{path} was saved from another run and is refused: " + "; ".join(problems))


def apply_state(w: Any, state: dict) -> Any:
    """Set ``w``'s epoch, selection, filters and view from ``state`` (checked first)."""
    epoch = state.get("epoch")
    if epoch is not None and int(epoch) not in w.epochs:
        raise DVIError(f"the state shows epoch {epoch}, which this run does not have; valid epochs: {w.epochs}")
    filters = state.get("filters") or {}
    with w.hold_sync():
        if epoch is not None:
            w.epoch = int(epoch)
        w.select(state.get("selected") or [])
        for name in FILTER_TRAITS:
            if name in filters and w.has_trait(name):
                setattr(w, name, filters[name])
        if w.has_trait("view"):
            w.view = dict(state.get("view") or {})
    return w


def load_state(path: str | os.PathLike, vis: Any, widget_cls: Any = None, **options: Any) -> Any:
    """A new widget for ``vis`` showing the state saved in ``path``."""
    state = read_state(path)
    check_run(state, vis, path)
    if widget_cls is None:
        from ..widget.widget import DVIWidget as widget_cls
    w = widget_cls(vis, **options)
    try:
        return apply_state(w, state)
    except DVIError:
        raise
    except (ValueError, TypeError, traitlets.TraitError) as e:   # a widget trait refused a value
        raise RunFileError(path, f"state file holds a value the widget refuses ({e})") from None
