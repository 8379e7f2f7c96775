"""The time-travelling map as a Jupyter widget (anywidget).

`DVIWidget(vis)` shows a fitted `Visualization`: the decision map behind the
points, playback over epochs, hover, inspector, lasso selection, trails,
filters and the faithfulness panel. The JavaScript lives in js/ and ships as
one bundle in dvi_widget/widget/static/widget.js.

What travels and who writes it is in PROTOCOL.md (repository root); the trait
tables and codecs are in `protocol.py`, the display sample and thumbnail atlas
in `sampling.py`. In short:
- Everything per sample goes as binary buffers (float32 positions, uint8 or
  uint16 classes, uint16-quantised probabilities, PNG maps), never as JSON
  lists of numbers.
- Each epoch is one child model (`EpochData`) in the `epoch_data` list, so the
  notebook's saved widget state holds every epoch, and adding an epoch
  (`refresh()`, live mode) sends that epoch only: the list update itself
  carries model references, not arrays.
- Thumbnails go up front as one uint8 atlas, so hover and the inspector keep
  working while the kernel is busy in a training loop.
- The page may write only the view state (epoch, selection, filters, view,
  point size and opacity); each such write is validated here, and a write to a
  data trait, or a bad value, is refused and the page is put back.
"""
from __future__ import annotations

import json
import math
import numbers
import pathlib
from itertools import islice
from typing import Any, Iterable

import anywidget
import ipywidgets
import numpy as np
import traitlets

from .protocol import (
    BROWSER_WRITABLE,
    MAX_SELECTION,
    WIDGET_TRAITS,
    class_dtype as _class_dtype,
    encode_classes,
    encode_png,
    encode_positions,
    encode_probabilities,
    finite_metrics,
    indices_from_json as _indices_from_json,
    indices_to_json as _indices_to_json,
)
from .sampling import stratified_sample, thumbnail_atlas
from . import requests as _requests
from ..analysis.dynamics import DYNAMICS_COLUMNS
from .dynamics_data import dynamics_payload

__all__ = ["DVIWidget", "EpochData", "WidgetValueError", "stratified_sample", "encode_classes",
           "encode_probabilities", "encode_png", "MAX_SELECTION"]

STATIC = pathlib.Path(__file__).parent / "static"

#: The drawing rules shared with the JS bundle (the user controls' ranges come from here).
STYLE = json.loads((pathlib.Path(__file__).parents[1] / "style.json").read_text(encoding="utf-8"))

#: Default cap on the number of points the browser draws (see `max_points`).
DEFAULT_MAX_POINTS = 100_000

#: Default cap on the size of the thumbnail atlas sent up front, in bytes.
DEFAULT_THUMBNAIL_BUDGET = 24 * 1024 * 1024

#: Data traits: Python writes them, the page never may (a page write is refused and reverted).
READ_ONLY_FROM_PAGE = frozenset(t.name for t in WIDGET_TRAITS if t.writer == "python")


class WidgetValueError(traitlets.TraitError, ValueError):
    """A bad value for a widget trait (unknown epoch, index out of range).

    A TraitError (what traitlets raises for bad trait values) and a
    ValueError (what the rest of the API raises), so either `except` works.
    """


class _EpochNumber(traitlets.Int):
    """An epoch number, or None only while a live widget has no epoch yet.

    traitlets skips validators for None when `allow_none` is set, so None is
    checked here, before that shortcut.
    """

    def _validate(self, obj: Any, value: Any) -> Any:
        if value is None and getattr(obj, "_sent", None):
            raise WidgetValueError(f"epoch cannot be None; valid epochs: {sorted(obj._sent)}")
        return super()._validate(obj, value)

    def validate(self, obj: Any, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise WidgetValueError(f"epoch must be an epoch number (int), got {value!r}")
        return int(value)


# ---------------------------------------------------------------- models

class EpochData(ipywidgets.Widget):
    """One epoch's arrays for the browser, as its own widget model.

    A plain `@jupyter-widgets/base` WidgetModel: no view, no custom JS class.
    Being a model of its own (not a custom message) puts the epoch in the
    notebook's saved widget state; being separate from the other epochs lets a
    new epoch travel alone.
    """

    epoch = traitlets.Int().tag(sync=True)
    positions = traitlets.Bytes(b"").tag(sync=True)  # float32 (n, 2), displayed points
    predictions = traitlets.Bytes(b"").tag(sync=True)  # uint8 / uint16 (n,)
    confidence = traitlets.Bytes(b"").tag(sync=True)  # uint16 q(p of predicted class)
    label_prob = traitlets.Bytes(b"").tag(sync=True)  # uint16 q(p of the sample's label)
    background = traitlets.Bytes(b"").tag(sync=True)  # PNG of the decision map
    background_extent = traitlets.List(traitlets.Float()).tag(sync=True)  # xmin, xmax, ymin, ymax
    metrics = traitlets.Dict().tag(sync=True)  # {name: float}

    def payload_bytes(self) -> int:
        """Bytes of the binary buffers this epoch carries."""
        return sum(len(b) for b in (self.positions, self.predictions, self.confidence, self.label_prob, self.background))

    def set_state(self, sync_data: dict) -> None:
        """A page never writes an epoch's data: any write is ignored and the page put back."""
        if sync_data:
            self.log.warning("dvi_widget: the page tried to change epoch data %s; ignored", sorted(sync_data))
            self.send_state(sorted(k for k in sync_data if k in self.keys))


class DVIWidget(anywidget.AnyWidget):
    """Interactive DVI map of a fitted run.

    Parameters
    ----------
    vis:
        A `dvi_widget.Visualization` (or anything with the same attributes).
    live:
        Follow a run still being recorded: a run with no epochs yet shows
        "waiting for the first epoch", and `refresh()` adds new epochs and
        jumps to the latest.
    max_points:
        Draw at most this many samples: a stratified sample (by label and
        split) whose indices stay the run's global indices (`selected`,
        `select()`). `None` draws all.
    thumbnail_budget:
        Largest thumbnail atlas sent up front, in bytes; bigger atlases are
        downsampled (every k-th pixel) to fit.

    Synced state: `epoch` (an epoch number), `selected` (sample indices),
    and the view options (`color_by`, `split_filter`, `hidden_classes`,
    `only_misclassified`, `only_flipped`, `show_trails`, `view`, `point_size`,
    `point_opacity`). PROTOCOL.md lists every trait with its type and writer.
    """

    _esm = STATIC / "widget.js"

    # static data, sent once
    meta = traitlets.Dict().tag(sync=True)
    labels = traitlets.Bytes(b"").tag(sync=True)
    split = traitlets.Bytes(b"").tag(sync=True)  # uint8, 1 = test
    indices = traitlets.Bytes(b"").tag(sync=True)  # uint32 global index per displayed point
    thumbnails = traitlets.Bytes(b"").tag(sync=True)  # uint8 atlas (n, h, w, c)

    # one child model per epoch
    epoch_data = traitlets.List(traitlets.Instance(EpochData)).tag(sync=True, **ipywidgets.widget_serialization)

    # state that syncs both ways
    epoch = _EpochNumber(None, allow_none=True).tag(sync=True)
    selected = traitlets.List().tag(sync=True, to_json=_indices_to_json, from_json=_indices_from_json)
    #: "label", "prediction", "correct", or a training-dynamics column (vis.dynamics(), on viridis).
    color_by = traitlets.Enum(["label", "prediction", "correct", *DYNAMICS_COLUMNS], default_value="label").tag(sync=True)
    split_filter = traitlets.Enum(["both", "train", "test"], default_value="both").tag(sync=True)
    hidden_classes = traitlets.List().tag(sync=True)  # class indices, checked in _check_hidden
    only_misclassified = traitlets.Bool(False).tag(sync=True)
    only_flipped = traitlets.Bool(False).tag(sync=True)
    show_trails = traitlets.Bool(False).tag(sync=True)
    view = traitlets.Dict().tag(sync=True)  # {} = fit the extent; else {cx, cy, zoom}
    #: Multiplier on the automatic point radius (style.json points.radius); the page's size slider.
    point_size = traitlets.Float(1.0).tag(sync=True)
    #: None: automatic opacity (style.json points.opacity); else the points' opacity.
    point_opacity = traitlets.Float(None, allow_none=True).tag(sync=True)
    #: vis.dynamics() of the displayed samples: float32 (K, n), columns named in dynamics_info.
    dynamics = traitlets.Bytes(b"").tag(sync=True)
    dynamics_info = traitlets.Dict().tag(sync=True)
    #: {} or {"column": name, "min": float | None, "max": float | None}: draw only samples in range.
    dynamics_filter = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        vis: Any,
        *,
        live: bool = False,
        max_points: int | None = DEFAULT_MAX_POINTS,
        thumbnail_budget: int = DEFAULT_THUMBNAIL_BUDGET,
        **kwargs: Any,
    ) -> None:
        epochs = [int(e) for e in vis.epochs]
        if not epochs and not live:
            raise ValueError(
                "this Visualization has no fitted epochs yet: capture and fit at least one epoch "
                "(dvi.fit(run_dir)), or show a live widget with rec.show()"
            )
        self._vis = vis
        self._live = bool(live)
        self._sent: dict[int, EpochData] = {}
        labels = np.asarray(vis.labels).astype(np.int64)
        classes = [str(c) for c in vis.classes]
        self._n_samples = len(labels)
        self._n_classes = len(classes)
        split = np.asarray(vis.split) if getattr(vis, "split", None) is not None else np.full(len(labels), "train")
        self._display = (
            np.arange(len(labels), dtype=np.int64)
            if max_points is None
            else stratified_sample(labels, split, int(max_points))
        )
        self._all_displayed = len(self._display) == len(labels)
        shown = self._display
        thumbs, thumb_shape = thumbnail_atlas(vis, shown, thumbnail_budget)
        colors = np.asarray(vis.colors, dtype=np.uint8).reshape(-1, 3)
        super().__init__(
            meta={
                "classes": classes,
                "colors": ["#%02x%02x%02x" % tuple(int(v) for v in c) for c in colors],
                "n_samples": int(len(labels)),
                "n_display": int(len(shown)),
                "thumbnail_shape": thumb_shape,
                "extent": self._extent(),
                "live": self._live,
                "run_id": str(getattr(vis, "run_id", "")),
                "epochs": epochs,
                "summary": self._summary(),
                "kernel": True,
            },
            labels=encode_classes(labels[shown], self._n_classes),
            split=(split[shown] == "test").astype(np.uint8).tobytes(),
            indices=b"" if self._all_displayed else shown.astype("<u4").tobytes(),
            thumbnails=thumbs,
            **kwargs,
        )
        self._add_epochs(epochs)
        self.on_msg(_requests.handle)  # the page's questions: neighbours, probe (widget/requests.py)

    # ------------------------------------------------------------ public API

    @property
    def vis(self) -> Any:
        """The Visualization shown."""
        return self._vis

    @property
    def epochs(self) -> list[int]:
        """Epoch numbers sent to the browser, ascending."""
        return sorted(self._sent)

    @property
    def display_indices(self) -> np.ndarray:
        """Global indices of the samples drawn (all of them unless `max_points` cut)."""
        return self._display.copy()

    def select(self, indices: Iterable[int]) -> None:
        """Select samples by global index (replaces the selection; [] clears it).

        Accepts a list, tuple, range, numpy array or other iterable of integers.
        A string, a float that is not whole, an index outside range(N) or more
        than `MAX_SELECTION` indices raise `WidgetValueError` (a ValueError)
        before any work.
        """
        if isinstance(indices, (str, bytes, bytearray, dict)) or not isinstance(indices, Iterable):
            raise WidgetValueError(
                f"select() takes sample indices (a list, range or array of ints), got {type(indices).__name__} {indices!r:.40}")
        if hasattr(indices, "__len__") and len(indices) > MAX_SELECTION:
            raise WidgetValueError(
                f"select() got {len(indices):,} indices; at most {MAX_SELECTION:,} can be selected "
                f"(the page's messages are capped at 10 MB)")
        if isinstance(indices, range):
            arr = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        elif isinstance(indices, np.ndarray):
            arr = indices
        elif isinstance(indices, (list, tuple)):
            if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in indices):
                raise WidgetValueError("select() takes integer sample indices, not strings or booleans")
            arr = np.asarray(indices)
        else:  # any other iterable (a generator, a set): read at most one past the cap
            items = list(islice(indices, 64))
            if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in items):
                raise WidgetValueError("select() takes integer sample indices, not strings or booleans")
            rest = np.fromiter(islice(indices, MAX_SELECTION + 1 - len(items)), dtype=np.float64) if len(items) == 64 \
                else np.zeros(0)
            arr = np.concatenate([np.asarray(items, dtype=np.float64), rest]) if len(rest) else np.asarray(items)
            if arr.size > MAX_SELECTION:
                raise WidgetValueError(f"select(): more than {MAX_SELECTION:,} indices; at most that many can be selected")
        self.selected = _integer_indices(arr, "select()").tolist()

    def refresh(self) -> list[int]:
        """Send the epochs fitted since the last call (live mode) and show the latest.

        Earlier epochs are not sent again. Returns the epoch numbers added.
        """
        epochs = [int(e) for e in self._vis.epochs]
        new = [e for e in epochs if e not in self._sent]
        if not new:
            return []
        self._add_epochs(new)
        return new

    # ------------------------------------------------------------ export (dvi_widget/export.py, state.py, pictures.py)

    def export_html(self, path: Any, **kw: Any) -> Any:
        """One self-contained offline HTML page of this widget, as it is now (see `dvi_widget.export`)."""
        from ..outputs.export import export_html
        return export_html(self, path, **kw)

    def save_state(self, path: Any) -> Any:
        """Save the epoch, selection, filters and view as JSON (see `dvi_widget.state`)."""
        from ..outputs.state import save_state
        return save_state(self, path)

    @classmethod
    def load_state(cls, path: Any, vis: Any, **kw: Any) -> "DVIWidget":
        """A new widget of `vis` showing a saved state; refuses a state from another run."""
        from ..outputs.state import load_state
        return load_state(path, vis, widget_cls=cls, **kw)

    def link(self, other: "DVIWidget", *, view: bool = True) -> Any:
        """Link this widget's epoch (by number), selection and, with ``view=True``, pan/zoom with
        ``other``'s, a widget of another run of the same samples; ``.unlink()`` undoes it
        (see ``dvi.compare`` and `dvi_widget.widget.compare`)."""
        from .compare import link
        return link(self, other, view=view)

    def snapshot(self, path: Any, **kw: Any) -> Any:
        """PNG of the current view (map, points, selection), drawn in Python (see `dvi_widget.pictures`)."""
        from ..outputs.pictures import snapshot
        return snapshot(self, path, **kw)

    # ------------------------------------------------------------ static picture (outputs/pictures.py)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        """The live view, plus a static PNG of the current view and one line on how to get the live
        map, for pages without the widget manager (see `dvi_widget.outputs.pictures.fallback_bundle`)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        from ..outputs.pictures import fallback_bundle
        return fallback_bundle(self, bundle)

    def _ipython_display_(self, **kwargs: Any) -> None:
        """In IPython (a notebook cell ending in ``w``, or ``display(w)``): two outputs, the static
        picture and then the live view (`dvi_widget.outputs.pictures.static_outputs`). An HTML page
        converted with the widget state saved shows only the live view of a one-output bundle, and
        offline that view is empty; the picture as an output of its own shows there. The live view
        hides the picture beside it once it renders (js/src/index.js)."""
        from IPython.display import publish_display_data

        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return
        from ..outputs.pictures import static_outputs
        for data, metadata in static_outputs(self, bundle):
            publish_display_data(data, metadata)

    # ------------------------------------------------------------ internals

    def _extent(self) -> list[float]:
        try:
            ext = self._vis.extent
        except (ValueError, AttributeError, IndexError):
            ext = None
        if ext is None:
            return [-1.0, 1.0, -1.0, 1.0]
        return [float(v) for v in ext]

    def _add_epochs(self, epochs: list[int]) -> None:
        if not epochs:
            return
        children = [self._epoch_child(e) for e in sorted(epochs)]
        for c in children:
            self._sent[c.epoch] = c
        with self.hold_sync():
            self.epoch_data = [*self.epoch_data, *children]
            self.meta = {**self.meta, "extent": self._extent(), "epochs": self.epochs, "summary": self._summary()}
            self.dynamics, self.dynamics_info = dynamics_payload(self._vis, self._display)
            if self.epoch is None or self._live:
                self.epoch = self.epochs[-1]

    def _epoch_child(self, epoch: int) -> EpochData:
        vis, shown = self._vis, self._display
        emb = np.asarray(vis.embedding(epoch), dtype=np.float32)
        if emb.shape != (self._n_samples, 2):
            raise ValueError(f"epoch {epoch}: embedding has shape {emb.shape}, expected ({self._n_samples}, 2)")
        pred = np.asarray(vis.predictions(epoch)).astype(np.int64)
        prob = np.asarray(vis.probabilities(epoch), dtype=np.float32)
        labels = np.asarray(vis.labels).astype(np.int64)
        if not self._all_displayed:
            emb, pred, prob, labels = emb[shown], pred[shown], prob[shown], labels[shown]
        rows = np.arange(len(pred))
        metrics = finite_metrics(vis.metrics.get(epoch) or {})
        return EpochData(
            epoch=int(epoch),
            positions=encode_positions(emb),
            predictions=encode_classes(pred, self._n_classes),
            confidence=encode_probabilities(prob[rows, pred]),
            label_prob=encode_probabilities(prob[rows, labels]),
            background=encode_png(vis.background(epoch)),
            background_extent=[float(v) for v in vis.background_extent(epoch)],
            metrics=metrics,
        )

    def _summary(self) -> dict[str, float]:
        """Run-level figures (vis.summary) for the faithfulness panel; {} when the run has none."""
        try:
            return finite_metrics(getattr(self._vis, "summary", None) or {})
        except Exception:  # a run without the files a summary needs still shows its map
            return {}

    # ------------------------------------------------------------ what the page may write

    def set_state(self, sync_data: dict) -> None:
        """State from the page: only the view state is accepted (PROTOCOL.md, writer "both").

        A write to a data trait (meta, labels, epoch_data...) is ignored, a bad
        value is refused; either way the page gets Python's value back.
        """
        refused = sorted(k for k in sync_data if k in READ_ONLY_FROM_PAGE)
        if refused:
            self.log.warning("dvi_widget: the page tried to change %s; data traits are written by Python only", refused)
        for name, value in sync_data.items():
            if name in READ_ONLY_FROM_PAGE:
                continue
            try:
                super().set_state({name: value})
            except (traitlets.TraitError, ValueError, TypeError) as err:
                self.log.warning("dvi_widget: refused %s from the page: %s", name, err)
                refused.append(name)
        if refused:
            self.send_state(refused)

    @traitlets.validate("epoch")
    def _check_epoch(self, proposal: Any) -> int | None:
        value = proposal["value"]
        if value is None:
            if self._sent:
                raise WidgetValueError(f"epoch cannot be None; valid epochs: {self.epochs}")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise WidgetValueError(f"epoch must be an epoch number (int), got {value!r}")
        value = int(value)
        if value not in self._sent:
            raise WidgetValueError(f"unknown epoch {value}; valid epochs: {self.epochs}")
        return value

    @traitlets.validate("selected")
    def _check_selected(self, proposal: Any) -> list[int]:
        raw = proposal["value"]
        if hasattr(raw, "__len__") and len(raw) > MAX_SELECTION:
            raise WidgetValueError(f"at most {MAX_SELECTION:,} samples can be selected, got {len(raw):,}")
        if isinstance(raw, (list, tuple)) and any(isinstance(v, (str, bytes, bool, np.bool_)) for v in raw):
            raise WidgetValueError("selected must hold integer sample indices")
        arr = _integer_indices(np.asarray(raw) if not isinstance(raw, np.ndarray) else raw, "selected")
        if arr.size == 0:
            return []
        bad = arr[(arr < 0) | (arr >= self._n_samples)]
        if bad.size:
            raise WidgetValueError(
                f"sample index {int(bad[0])} out of range: this run has {self._n_samples} samples "
                f"(valid indices 0..{self._n_samples - 1})"
            )
        return np.unique(arr).tolist()

    @traitlets.validate("hidden_classes")
    def _check_hidden(self, proposal: Any) -> list[int]:
        value = proposal["value"]
        n = self._n_classes
        if len(value) > n:
            raise WidgetValueError(f"hidden_classes: {len(value):,} entries for {n} classes")
        out = set()
        for v in value:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) < n:
                raise WidgetValueError(f"hidden_classes holds class indices 0..{n - 1}, got {v!r}")
            out.add(int(v))
        return sorted(out)

    @traitlets.validate("view")
    def _check_view(self, proposal: Any) -> dict:
        v = proposal["value"]
        if not v:
            return {}
        extra = set(v) - {"cx", "cy", "zoom"}
        if extra or "cx" not in v or "cy" not in v:
            raise WidgetValueError(f"view is {{}} or {{cx, cy, zoom}}, got keys {sorted(v)}")
        out = {}
        for k in ("cx", "cy", "zoom"):
            x = v.get(k, 1.0)
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
                raise WidgetValueError(f"view[{k!r}] must be a finite number, got {x!r}")
            out[k] = float(x)
        if not 1e-6 <= out["zoom"] <= 1e6:
            raise WidgetValueError(f"view['zoom'] must be in [1e-6, 1e6], got {out['zoom']}")
        if max(abs(out["cx"]), abs(out["cy"])) > 1e12:
            raise WidgetValueError("view centre is too far out (|cx|, |cy| > 1e12)")
        return out

    @traitlets.validate("point_size")
    def _check_point_size(self, proposal: Any) -> float:
        lo, hi = STYLE["interaction"]["point_size_range"]
        v = float(proposal["value"])
        if not lo <= v <= hi:
            raise WidgetValueError(f"point_size is a multiplier in [{lo}, {hi}], got {v}")
        return v

    @traitlets.validate("dynamics_filter")
    def _check_dynamics_filter(self, proposal: Any) -> dict:
        f = proposal["value"]
        if not f:
            return {}
        columns = (self.dynamics_info or {}).get("columns") or list(DYNAMICS_COLUMNS)
        if not isinstance(f, dict) or set(f) - {"column", "min", "max"} or f.get("column") not in columns:
            raise WidgetValueError(f"dynamics_filter is {{}} or {{'column': one of {columns}, 'min': float or None, "
                                   f"'max': float or None}}, got {f!r}")
        out = {"column": f["column"]}
        for end in ("min", "max"):
            v = f.get(end)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v))):
                raise WidgetValueError(f"dynamics_filter {end} must be a finite number or None, got {v!r}")
            out[end] = None if v is None else float(v)
        if out["min"] is not None and out["max"] is not None and out["min"] > out["max"]:
            raise WidgetValueError(f"dynamics_filter min {out['min']} is above max {out['max']}")
        return out

    @traitlets.validate("point_opacity")
    def _check_point_opacity(self, proposal: Any) -> float | None:
        v = proposal["value"]
        if v is None:
            return None
        lo, hi = STYLE["interaction"]["point_opacity_range"]
        if not lo <= float(v) <= hi:
            raise WidgetValueError(f"point_opacity is None (automatic) or in [{lo}, {hi}], got {v}")
        return float(v)


def _integer_indices(arr: np.ndarray, what: str) -> np.ndarray:
    """A flat int64 array of indices; whole floats are accepted, anything else is refused."""
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise WidgetValueError(f"{what}: a flat sequence of sample indices, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
        return arr.astype(np.int64)
    raise WidgetValueError(f"{what} takes integer sample indices, got {arr.dtype} values")
