"""The time-travelling map as a Jupyter widget (anywidget).

`DVIWidget(vis)` shows a fitted `Visualization`: the decision map behind the
points, playback over epochs, hover, inspector, lasso selection, trails,
filters and the faithfulness panel. The JavaScript lives in js/ and ships as
one bundle in dvi_widget/widget/static/widget.js.

How data travels (see DESIGN.md, Widget):
- Everything per sample goes as binary buffers (float32 positions, uint8 or
  uint16 classes, uint16-quantised probabilities, PNG maps), never as JSON
  lists of numbers.
- Each epoch is one child model (`EpochData`) in the `epoch_data` list, so the
  notebook's saved widget state holds every epoch, and adding an epoch
  (`refresh()`, live mode) sends that epoch only: the list update itself
  carries model references, not arrays.
- Thumbnails go up front as one uint8 atlas, so hover and the inspector keep
  working while the kernel is busy in a training loop.
"""
from __future__ import annotations

import io
import math
import pathlib
from typing import Any, Iterable, Sequence

import anywidget
import ipywidgets
import numpy as np
import traitlets
from PIL import Image

__all__ = ["DVIWidget", "EpochData", "WidgetValueError"]

STATIC = pathlib.Path(__file__).parent / "static"

#: Browser-to-kernel messages are capped at 10 MB (Tornado); a selection of
#: uint32 indices must fit, with room for the message envelope.
MAX_SELECTION = (10 * 1024 * 1024 - 64 * 1024) // 4

#: Default cap on the number of points the browser draws (see `max_points`).
DEFAULT_MAX_POINTS = 100_000

#: Default cap on the size of the thumbnail atlas sent up front, in bytes.
DEFAULT_THUMBNAIL_BUDGET = 24 * 1024 * 1024


class WidgetValueError(traitlets.TraitError, ValueError):
    """A bad value for a widget trait (unknown epoch, index out of range).

    A TraitError (what traitlets raises for bad trait values) and a
    ValueError (what the rest of the API raises), so either `except` works.
    """


# ---------------------------------------------------------------- encoding

def _class_dtype(n_classes: int) -> np.dtype:
    """uint8 while classes fit in a byte, else uint16 (the JS side mirrors this)."""
    return np.dtype(np.uint8) if n_classes <= 256 else np.dtype(np.uint16)


def encode_classes(values: np.ndarray, n_classes: int) -> bytes:
    """Class indices as uint8 / uint16 bytes."""
    return np.ascontiguousarray(values, dtype=_class_dtype(n_classes)).tobytes()


def encode_probabilities(p: np.ndarray) -> bytes:
    """Probabilities in [0, 1] quantised to uint16 (resolution 1.5e-5): half of float32."""
    q = np.rint(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0) * 65535.0)
    return q.astype("<u2").tobytes()


def encode_png(rgba: np.ndarray) -> bytes:
    """An (H, W, 4) uint8 map as PNG bytes (Pillow)."""
    arr = np.ascontiguousarray(rgba, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"background must be (H, W, 4) uint8, got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _indices_to_json(value: Sequence[int] | None, widget: Any) -> memoryview:
    """`selected` travels as a little-endian uint32 buffer."""
    return memoryview(np.asarray(value or [], dtype="<u4").tobytes())


def _indices_from_json(value: Any, widget: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(value), dtype="<u4").astype(np.int64).tolist()
    return [int(v) for v in value]


def stratified_sample(labels: np.ndarray, split: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted global indices of at most `max_points` samples, keeping each
    (label, split) group's share (largest-remainder rounding; every group with
    members keeps at least one when the budget allows)."""
    n = len(labels)
    if max_points >= n:
        return np.arange(n, dtype=np.int64)
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    keys = labels.astype(np.int64) * 2 + (np.asarray(split) == "test")
    groups, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse)
    quota = counts * (max_points / n)
    take = np.floor(quota).astype(np.int64)
    if len(groups) <= max_points:
        take = np.maximum(take, (counts > 0).astype(np.int64))
    rest = max_points - take.sum()
    if rest > 0:  # largest remainders first
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for g in order:
            if rest == 0:
                break
            if take[g] < counts[g]:
                take[g] += 1
                rest -= 1
    while take.sum() > max_points:  # minimum-one rule overshot: trim largest groups
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(inverse == g), size=int(t), replace=False) for g, t in enumerate(take) if t > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


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
    `only_misclassified`, `only_flipped`, `show_trails`, `view`).
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
    epoch = traitlets.Int(None, allow_none=True).tag(sync=True)
    selected = traitlets.List(traitlets.Int()).tag(sync=True, to_json=_indices_to_json, from_json=_indices_from_json)
    color_by = traitlets.Enum(["label", "prediction", "correct"], default_value="label").tag(sync=True)
    split_filter = traitlets.Enum(["both", "train", "test"], default_value="both").tag(sync=True)
    hidden_classes = traitlets.List(traitlets.Int()).tag(sync=True)
    only_misclassified = traitlets.Bool(False).tag(sync=True)
    only_flipped = traitlets.Bool(False).tag(sync=True)
    show_trails = traitlets.Bool(False).tag(sync=True)
    view = traitlets.Dict().tag(sync=True)  # {} = fit the extent; else {cx, cy, zoom}

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
        thumbs, thumb_shape = self._thumbnail_atlas(vis, shown, thumbnail_budget)
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
            },
            labels=encode_classes(labels[shown], self._n_classes),
            split=(split[shown] == "test").astype(np.uint8).tobytes(),
            indices=b"" if self._all_displayed else shown.astype("<u4").tobytes(),
            thumbnails=thumbs,
            **kwargs,
        )
        self._add_epochs(epochs)

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

        Accepts any iterable of integers (a list, a numpy array, a range);
        an index outside range(N) raises ValueError.
        """
        arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr.astype(np.float64), 1) == 0)):
            raise WidgetValueError("select() takes integer sample indices")
        self.selected = [int(v) for v in arr.reshape(-1)]

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
            self.meta = {**self.meta, "extent": self._extent(), "epochs": self.epochs}
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
        metrics = {str(k): float(v) for k, v in (vis.metrics.get(epoch) or {}).items() if _is_number(v)}
        return EpochData(
            epoch=int(epoch),
            positions=np.ascontiguousarray(emb, dtype="<f4").tobytes(),
            predictions=encode_classes(pred, self._n_classes),
            confidence=encode_probabilities(prob[rows, pred]),
            label_prob=encode_probabilities(prob[rows, labels]),
            background=encode_png(vis.background(epoch)),
            background_extent=[float(v) for v in vis.background_extent(epoch)],
            metrics=metrics,
        )

    @staticmethod
    def _thumbnail_atlas(vis: Any, shown: np.ndarray, budget: int) -> tuple[bytes, dict | None]:
        if not getattr(vis, "has_thumbnails", False) or len(shown) == 0:
            return b"", None
        thumbs = np.asarray(vis.thumbnails(shown), dtype=np.uint8)
        if thumbs.ndim == 3:
            thumbs = thumbs[..., None]
        if thumbs.ndim != 4 or thumbs.shape[-1] not in (1, 3):
            raise ValueError(f"thumbnails must be (M, h, w) or (M, h, w, 3), got {thumbs.shape}")
        stride = max(1, math.ceil(math.sqrt(thumbs.nbytes / max(budget, 1))))
        if stride > 1:
            thumbs = thumbs[:, ::stride, ::stride]
        thumbs = np.ascontiguousarray(thumbs)
        _, h, w, c = thumbs.shape
        return thumbs.tobytes(), {"h": int(h), "w": int(w), "c": int(c)}

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
        arr = np.asarray(list(raw), dtype=np.float64) if not isinstance(raw, np.ndarray) else raw
        if arr.size == 0:
            return []
        if arr.ndim != 1:
            raise WidgetValueError(f"selected must be a flat list of sample indices, got shape {arr.shape}")
        if not np.all(np.mod(arr, 1) == 0):
            raise WidgetValueError("selected must hold integer sample indices")
        arr = arr.astype(np.int64)
        bad = arr[(arr < 0) | (arr >= self._n_samples)]
        if bad.size:
            raise WidgetValueError(
                f"sample index {int(bad[0])} out of range: this run has {self._n_samples} samples "
                f"(valid indices 0..{self._n_samples - 1})"
            )
        out = np.unique(arr)
        if out.size > MAX_SELECTION:
            raise WidgetValueError(f"at most {MAX_SELECTION} samples can be selected, got {out.size}")
        return out.tolist()


def _is_number(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
