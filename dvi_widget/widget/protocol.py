"""What travels between Python and the JS bundle: trait tables and codecs.

PROTOCOL.md (repository root) is the prose version of this module; its JS
twin is js/src/protocol.js. tests/protocol_vectors.json holds golden vectors
that both sides check (pytest: tests/test_protocol.py; node: js/test/protocol.test.js),
so a change to an encoding here that JS does not follow fails a test.

Encodings (all little-endian):
- positions: float32, (n, 2) row-major, displayed points in display order;
- class indices (labels, predictions): uint8 while there are at most 256 classes, else uint16;
- probabilities (confidence, label_prob): uint16, round(clip(p, 0, 1) * 65535);
- sample indices (selected, indices): uint32;
- split: uint8, 1 = test, 0 = train;
- thumbnails: uint8 (n, h, w, c), c = 1 or 3, shape in meta.thumbnail_shape;
- decision maps (background): PNG bytes (RGBA or RGB, first row = ymax).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "Trait", "WIDGET_TRAITS", "EPOCH_TRAITS", "META_FIELDS", "BROWSER_WRITABLE",
    "class_dtype", "encode_classes", "decode_classes", "encode_probabilities", "decode_probabilities",
    "encode_positions", "decode_positions", "encode_indices", "decode_indices", "encode_png", "png_size",
    "indices_to_json", "indices_from_json", "MAX_SELECTION",
]

#: Browser-to-kernel messages are capped at 10 MB (Tornado); a selection of
#: uint32 indices must fit, with room for the message envelope.
MAX_SELECTION = (10 * 1024 * 1024 - 64 * 1024) // 4


@dataclass(frozen=True)
class Trait:
    """One synced trait: its wire type, shape, who writes it and when it travels."""

    name: str
    wire: str  # "json" or the buffer's dtype: "float32", "uint8", "uint16", "uint32", "classes", "png"
    shape: str  # in words, e.g. "(n, 2)"
    writer: str  # "python" (the browser may not change it) or "both"
    travels: str  # when it is sent
    doc: str


def _option(name: str, shape: str, doc: str, travels: str = "on change") -> Trait:
    """A view option: JSON, written by both sides (the page's controls and Python)."""
    return Trait(name, "json", shape, "both", travels, doc)


#: The DVIWidget model's traits.
WIDGET_TRAITS: tuple[Trait, ...] = (
    Trait("meta", "json", "object", "python", "at creation; again when epochs are added (extent, epochs)",
          "run facts for the page: see META_FIELDS"),
    Trait("labels", "classes", "(n,)", "python", "once, at creation", "each displayed sample's label"),
    Trait("split", "uint8", "(n,)", "python", "once, at creation", "1 = test sample, 0 = train"),
    Trait("indices", "uint32", "(n,) or empty", "python", "once, at creation",
          "global sample index of each displayed point; empty when every sample is displayed (position = index)"),
    Trait("thumbnails", "uint8", "(n, h, w, c) or empty", "python", "once, at creation",
          "every displayed sample's image, so hover and the inspector work while the kernel is busy"),
    Trait("epoch_data", "json", "list of model references", "python",
          "at creation; on refresh() a longer list (earlier children are not sent again)",
          "one EpochData child model per epoch, ascending"),
    Trait("epoch", "json", "int or null", "both", "on every change (playback: once per epoch reached)",
          "the epoch number shown; null only in a live widget with no epoch yet"),
    Trait("selected", "uint32", "(m,) sorted, unique", "both", "on every change",
          "global indices of the selected samples, at most MAX_SELECTION"),
    _option("color_by", "'label' | 'prediction' | 'correct' | a dynamics column",
            "point colouring: by class, or by a training-dynamics statistic (dynamics_info.columns) on viridis"),
    _option("split_filter", "'both' | 'train' | 'test'", "which split shows"),
    _option("hidden_classes", "list of class indices, unique, at most C", "classes (by label) not drawn"),
    _option("only_misclassified", "bool", "draw only samples predicted wrong"),
    _option("only_flipped", "bool", "draw only samples whose prediction changed since the previous epoch"),
    _option("show_trails", "bool", "draw the selected samples' paths"),
    _option("view", "{} or {cx, cy, zoom}",
            "{} fits the extent; else the centre in data units and the zoom relative to the fit",
            travels="after a pan or zoom settles (250 ms)"),
    _option("point_size", "float in [0.25, 4]", "multiplier on the automatic point radius (style.json points.radius)"),
    _option("point_opacity", "null or float in [0.05, 1]",
            "null: automatic opacity (style.json points.opacity); else this opacity"),
    Trait("dynamics", "float32", "(K, n) column after column, or empty", "python",
          "at creation; again when refresh() adds epochs",
          "vis.dynamics() for the displayed samples, the K columns named in dynamics_info; NaN = no value"),
    Trait("dynamics_info", "json", "{columns, descriptions, aum_from, epochs} or {}", "python",
          "with dynamics", "what the dynamics columns are, the epochs they cover, AUM's source"),
    _option("dynamics_filter", "{} or {column, min, max}",
            "draw only samples whose statistic lies in [min, max] (null: open end; NaN never passes)",
            travels="on change (range sliders)"),
)

#: An EpochData child model's traits (all written by Python, once).
EPOCH_TRAITS: tuple[Trait, ...] = (
    Trait("epoch", "json", "int", "python", "once", "the epoch number"),
    Trait("positions", "float32", "(n, 2)", "python", "once", "2-D position of each displayed point"),
    Trait("predictions", "classes", "(n,)", "python", "once", "predicted class"),
    Trait("confidence", "uint16", "(n,)", "python", "once", "quantised probability of the predicted class"),
    Trait("label_prob", "uint16", "(n,)", "python", "once", "quantised probability of the sample's label"),
    Trait("background", "png", "(H, W) image", "python", "once", "the decision map, first row = ymax"),
    Trait("background_extent", "json", "[xmin, xmax, ymin, ymax]", "python", "once", "what the map covers"),
    Trait("metrics", "json", "{name: float}", "python", "once", "this epoch's faithfulness figures (finite only)"),
)

#: Fields of the `meta` trait: name -> (JSON type, meaning).
META_FIELDS: dict[str, tuple[str, str]] = {
    "classes": ("list[str]", "class names, index = class"),
    "colors": ("list[str]", "#rrggbb per class (dvi_widget/palette.py), the maps' colours"),
    "n_samples": ("int", "N, samples in the run"),
    "n_display": ("int", "n, samples drawn (max_points may cut)"),
    "thumbnail_shape": ("{h, w, c} | null", "shape of one thumbnail in `thumbnails`; null: no images"),
    "extent": ("[xmin, xmax, ymin, ymax]", "union of the fitted epochs' extents; the view fits it"),
    "live": ("bool", "a live widget (rec.show()): waits for epochs"),
    "run_id": ("str", "the run's id (state files name it)"),
    "epochs": ("list[int]", "epoch numbers sent so far, ascending"),
    "summary": ("{name: float}", "run-level figures (vis.summary), e.g. stab_spearman"),
    "kernel": ("bool", "false in the offline export: requests (neighbours, probe) have no kernel to answer"),
}

#: Traits the browser may change; a browser write to any other is ignored and reverted.
BROWSER_WRITABLE: frozenset[str] = frozenset(t.name for t in WIDGET_TRAITS if t.writer == "both")


# ---------------------------------------------------------------- codecs

def class_dtype(n_classes: int) -> np.dtype:
    """uint8 while classes fit in a byte, else uint16 (js/src/protocol.js mirrors this)."""
    return np.dtype(np.uint8) if n_classes <= 256 else np.dtype("<u2")


def encode_classes(values: np.ndarray, n_classes: int) -> bytes:
    """Class indices as uint8 / uint16 bytes."""
    return np.ascontiguousarray(values, dtype=class_dtype(n_classes)).tobytes()


def decode_classes(data: bytes, n_classes: int) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=class_dtype(n_classes)).astype(np.int64)


def encode_probabilities(p: np.ndarray) -> bytes:
    """Probabilities in [0, 1] quantised to uint16 (resolution 1.5e-5): half of float32."""
    q = np.rint(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0) * 65535.0)
    return q.astype("<u2").tobytes()


def decode_probabilities(data: bytes) -> np.ndarray:
    return (np.frombuffer(bytes(data), dtype="<u2") / 65535.0).astype(np.float32)


def encode_positions(xy: np.ndarray) -> bytes:
    """(n, 2) positions as float32 bytes, row-major."""
    arr = np.asarray(xy, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"positions must be (n, 2), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


def decode_positions(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4").reshape(-1, 2)


def encode_indices(indices: Sequence[int]) -> bytes:
    """Sample indices as uint32 bytes, sorted and unique (the wire form of `selected`)."""
    return np.unique(np.asarray(list(indices), dtype=np.int64)).astype("<u4").tobytes()


def decode_indices(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<u4").astype(np.int64)


def encode_png(rgba: np.ndarray) -> bytes:
    """An (H, W, 4) or (H, W, 3) uint8 map as PNG bytes (Pillow)."""
    arr = np.ascontiguousarray(rgba, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"background must be (H, W, 4) uint8, got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; ValueError when it is not a PNG."""
    b = bytes(data[:24])
    if len(b) < 24 or b[:8] != _PNG_SIGNATURE or b[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")


def indices_to_json(value: Sequence[int] | None, widget: Any) -> memoryview:
    """`selected` to the browser: a little-endian uint32 buffer."""
    return memoryview(np.asarray(value or [], dtype="<u4").tobytes())


def indices_from_json(value: Any, widget: Any) -> list[int]:
    """`selected` from the browser: a uint32 buffer (a JSON list is accepted too)."""
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) % 4:
            raise ValueError(f"selected: {len(raw)} bytes is not a whole number of uint32 indices")
        return decode_indices(raw).tolist()
    if isinstance(value, (str, dict)):
        raise ValueError(f"selected must be a uint32 buffer, got {type(value).__name__}")
    return [int(v) for v in value]


def finite_metrics(values: dict) -> dict[str, float]:
    """{name: float} keeping only finite numbers (JSON has no NaN)."""
    out = {}
    for k, v in (values or {}).items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[str(k)] = f
    return out
