"""Pictures drawn in Python with Pillow, so they work with no browser attached
(nbclient, CI, a script, a notebook page without the widget manager):
``w.snapshot(path)``, ``vis.to_gif(path)`` and the static PNG in the widget's output.

They draw what the widget draws, by the same rules: the drawing rules come from
``dvi_widget/style.json``, the file the JS bundle is built with (view fit and
margin, point radius and opacity from the number of visible points and the
zoom, outlines only on large points, dimming while there is a selection,
crosses for misclassified samples, the 'correct?' colours, trail caps). Points
are rasterised like the widget's Canvas2D path (js/src/raster.js): each point
is a stamp of device pixels (a disk or a cross, with an optional one-pixel
ring) written into the image in drawing order, translucent stamps blended
into what is under them. The rasteriser is vectorised with numpy, so a
picture of 100,000 points takes a fraction of a second.
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DVIError
from ..store.atomic import write_bytes_atomic

if TYPE_CHECKING:  # outputs import the widget only for type checking (README.md, "Package layout")
    from ..widget.widget import DVIWidget

#: The drawing rules shared with the JS bundle.
STYLE_PATH = Path(__file__).resolve().parents[1] / "style.json"
TEXT = (31, 31, 31)
MUTED = (97, 97, 97)


@functools.lru_cache(maxsize=1)
def style() -> dict:
    """The drawing rules (dvi_widget/style.json), read once."""
    try:
        return json.loads(STYLE_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # a broken install, not a user error
        raise DVIError(f"cannot read the drawing rules {STYLE_PATH}: {e}") from None


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType scaling
        return ImageFont.load_default()


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, v))


def point_radius(n_visible: int, width: float, height: float, zoom: float = 1.0, size: float = 1.0) -> float:
    """Point radius in CSS px (style.json points.radius; js/src/style.js pointRadius)."""
    R = style()["points"]["radius"]
    density = _clamp(R["scale"] * np.sqrt(width * height / max(n_visible, 1)), R["min"], R["max"])
    return max(R["floor"], min(R["max"], density * max(zoom, 1e-6) ** R["zoom_exponent"]) * size)


def point_opacity(n_visible: int, radius: float, width: float, height: float, zoom: float = 1.0) -> float:
    """Automatic point alpha in [0, 1] (style.json points.opacity; js/src/style.js pointOpacity)."""
    O = style()["points"]["opacity"]
    if O.get("opaque_above") is not None and n_visible > O["opaque_above"]:
        return 1.0
    z = max(zoom, 1e-6)
    overdraw = n_visible * np.pi * radius * radius / max(width * height * z * z, 1e-9)
    return _clamp(O["coverage"] / max(overdraw, 1e-9), O["min"], O["max"])


_radius_rule, _opacity_rule = point_radius, point_opacity  # render() has arguments of these names


def map_aspect(extent: Sequence[float] | None) -> float:
    """Width / height of the map for an extent (style.json view; js/src/style.js mapAspect)."""
    V = style()["view"]
    if not extent or len(extent) != 4:
        return 1.5
    w, h = float(extent[1]) - float(extent[0]), float(extent[3]) - float(extent[2])
    if not (w > 0 and h > 0) or not np.isfinite(w / h):
        return 1.5
    return _clamp(w / h, V["aspect_min"], V["aspect_max"])


def fit_view(extent: Sequence[float], width: float, height: float, margin: float | None = None) -> tuple[float, float, float]:
    """(cx, cy, k): the view that fits ``extent`` in width x height, as js/src/view.js fitView."""
    margin = style()["view"]["margin"] if margin is None else margin
    x0, x1, y0, y1 = (float(v) for v in extent)
    w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    k = min(width / w, height / h) * (1 - 2 * margin)
    return (x0 + x1) / 2, (y0 + y1) / 2, k


def view_transform(extent, width, height, view: dict | None = None) -> tuple[float, float, float]:
    """The widget's transform for a saved ``view`` ({} = fit; else {cx, cy, zoom} relative to the fit)."""
    cx, cy, k = fit_view(extent, width, height)
    if view and view.get("cx") is not None:
        return float(view["cx"]), float(view["cy"]), k * float(view.get("zoom") or 1.0)
    return cx, cy, k


def _to_screen(xy: np.ndarray, cx: float, cy: float, k: float, width: float, height: float) -> np.ndarray:
    out = np.empty((len(xy), 2), dtype=np.float64)
    out[:, 0] = (xy[:, 0] - cx) * k + width / 2
    out[:, 1] = (cy - xy[:, 1]) * k + height / 2
    return out


def _paint_map(canvas: Image.Image, rgba: np.ndarray, extent, cx, cy, k, scale: float) -> None:
    """Paint the decision map ``rgba`` (row 0 = ymax) covering ``extent`` onto ``canvas``."""
    bh, bw = rgba.shape[:2]
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    W, H = canvas.size
    left = ((xmin - cx) * k + W / scale / 2) * scale
    top = ((cy - ymax) * k + H / scale / 2) * scale
    width = (xmax - xmin) * k * scale
    height = (ymax - ymin) * k * scale
    if width <= 0 or height <= 0:
        return
    src = Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA")
    a, e = bw / width, bh / height
    layer = src.transform((W, H), Image.Transform.AFFINE, (a, 0, -left * a, 0, e, -top * e),
                          resample=Image.Resampling.BILINEAR)
    canvas.alpha_composite(layer)


# ---------------------------------------------------------------- the point rasteriser

@functools.lru_cache(maxsize=64)
def stamp(radius: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(fill, ring): (m, 2) arrays of (dy, dx) device-pixel offsets of a point's stamp.

    As js/src/raster.js makeStamp: ``shape`` "disk" (dx² + dy² <= r² + 0.8 r) or "cross"
    (||dx| - |dy|| <= max(1, r / 2.5)) inside the square of half-side r; the ring is the
    pixels next to the fill (4-neighbours) that are not fill.
    """
    r = int(radius)
    d = np.arange(-r - 1, r + 2)
    dy, dx = np.meshgrid(d, d, indexing="ij")

    def inside(x, y):
        box = (np.abs(x) <= r) & (np.abs(y) <= r)
        if shape == "disk":
            return box & (x * x + y * y <= r * r + r * 0.8)
        return box & (np.abs(np.abs(x) - np.abs(y)) <= max(1.0, r / 2.5))

    fill = inside(dx, dy)
    ring = ~fill & (inside(dx - 1, dy) | inside(dx + 1, dy) | inside(dx, dy - 1) | inside(dx, dy + 1))
    return np.stack([dy[fill], dx[fill]], 1), np.stack([dy[ring], dx[ring]], 1)


def _stamp_entries(xs, ys, order, width, height, radius: int, shape: str, colors, alpha: float,
                   ring_rgb, ring_alpha: float):
    """Pixel index, drawing rank, colour and alpha of every pixel the points ``order`` write."""
    fill, ring = stamp(radius, shape)
    reach = radius + 1
    x = np.floor(xs[order] + 0.5).astype(np.int64)  # Math.round
    y = np.floor(ys[order] + 0.5).astype(np.int64)
    ok = (x >= reach) & (y >= reach) & (x < width - reach) & (y < height - reach)  # as the JS: whole stamps only
    x, y, o = x[ok], y[ok], np.asarray(order)[ok]
    rank = np.flatnonzero(ok)  # position in ``order``
    base = y * width + x
    parts = []
    # per point: ring first, then fill (a later point's ring covers an earlier point's fill)
    for offsets, is_fill in ((ring, 0), (fill, 1)):
        if is_fill == 0 and (ring_rgb is None or ring_alpha <= 0 or not len(offsets)):
            continue
        off = offsets[:, 0] * width + offsets[:, 1]
        pix = (base[:, None] + off[None, :]).ravel()
        seq = np.repeat(rank * 2 + is_fill, len(off))
        if is_fill:
            col = np.repeat(colors[o], len(off), axis=0)
            a = np.full(len(pix), alpha)
        else:
            col = np.broadcast_to(np.asarray(ring_rgb, dtype=np.float64), (len(pix), 3))
            a = np.full(len(pix), ring_alpha)
        parts.append((pix, seq, col, a))
    return parts


def composite(image: np.ndarray, parts: list) -> None:
    """Write stamps into ``image`` ((H, W, 3) float64, in place) in drawing order.

    Each pixel ends as the stamps covering it blended in order: out = dst * prod(1 - a_j)
    + sum_j c_j a_j prod_{k > j}(1 - a_k); opaque stamps simply cover what is under them.
    Vectorised: entries sorted by (pixel, drawing order), products as sums of logs per pixel.
    """
    if not parts:
        return
    pix = np.concatenate([p[0] for p in parts])
    if not len(pix):
        return
    seq = np.concatenate([p[1] for p in parts])
    col = np.concatenate([np.asarray(p[2], dtype=np.float64) for p in parts])
    a = np.concatenate([p[3] for p in parts]).astype(np.float64)
    key = pix.astype(np.int64) * (int(seq.max()) + 1) + seq
    order = np.argsort(key, kind="stable")
    pix, col, a = pix[order], col[order], a[order]
    starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(pix)]))
    la = np.log(np.clip(1.0 - a, 1e-12, 1.0))
    cs = np.cumsum(la)
    ends = np.r_[starts[1:], len(pix)] - 1
    after = cs[ends][group] - cs  # sum of log(1 - a_k) over the later stamps on the same pixel
    weight = a * np.exp(after)
    keep = np.exp(cs[ends] - cs[starts] + la[starts])  # prod(1 - a_j) over the pixel's stamps
    flat = image.reshape(-1, 3)
    upix = pix[starts]
    added = np.stack([np.bincount(group, weights=col[:, c] * weight, minlength=len(starts)) for c in range(3)], 1)
    flat[upix] = flat[upix] * keep[:, None] + added


#: Colour of a statistic with no value (NaN): js/src/dynamics.js MISSING_RGB.
MISSING_RGB = (158, 158, 158)
CLASS_MODES = ("label", "prediction", "correct")


@functools.lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    """(256, 3) uint8: matplotlib's viridis as bokeh ships it, the table js/src/dynamics.js holds."""
    from bokeh.palettes import Viridis256
    return np.array([_rgb(h) for h in Viridis256], dtype=np.uint8)


def stat_range(values: np.ndarray) -> tuple[float, float]:
    """The range viridis spans for a statistic: its finite [min, max], equal ends widened by 0.5
    ([0, 1] with no finite value), as js/src/dynamics.js finiteRange."""
    v = np.asarray(values, dtype=np.float64)
    fin = np.isfinite(v)
    lo, hi = (float(v[fin].min()), float(v[fin].max())) if fin.any() else (0.0, 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def fmt_stat(v: float) -> str:
    """A statistic's value as the page's colour bar writes it (js/src/dynamics.js fmtStat)."""
    if not math.isfinite(v):
        return "—"
    a = abs(v)
    if a != 0 and (a < 0.01 or a >= 1000):
        m, e = f"{v:.2e}".split("e")
        return f"{m}e{int(e):+d}"
    return f"{round(v, 3 if a < 1 else 2):g}"


def stat_colors(values: np.ndarray) -> np.ndarray:
    """(n, 3) uint8: a statistic on viridis over its finite [min, max] (equal ends widened by 0.5),
    NaN grey, as js/src/dynamics.js (finiteRange, statColors) colours the points."""
    v = np.asarray(values, dtype=np.float64)
    fin = np.isfinite(v)
    lo, hi = stat_range(v)
    t = np.clip((np.where(fin, v, lo) - lo) / (hi - lo), 0, 1)
    k = np.floor(t * 255 + 0.5).astype(np.int64)  # Math.round
    out = _viridis()[k]
    out[~fin] = MISSING_RGB
    return out


def _dynamics_column(vis: Any, name: str, shown: np.ndarray, dynamics: Any) -> np.ndarray:
    """Column ``name`` of the training dynamics for the drawn samples: from ``dynamics`` (a mapping
    of columns aligned with ``shown``) or computed with ``vis.dynamics()``."""
    if dynamics is not None:
        if name not in dynamics:
            raise DVIError(f"no training-dynamics column {name!r}; there are {sorted(dynamics)}")
        col = np.asarray(dynamics[name], dtype=np.float64)
        if col.shape != shown.shape:
            raise DVIError(f"dynamics column {name!r} has {col.shape[0]} values for {len(shown)} drawn samples")
        return col
    from ..analysis.dynamics import DYNAMICS_COLUMNS
    names = list(DYNAMICS_COLUMNS)
    if name not in names:
        raise DVIError(f"color_by must be one of {list(CLASS_MODES) + names}, got {name!r}")
    if not hasattr(vis, "dynamics"):
        raise DVIError(f"color_by={name!r} needs training dynamics, which {type(vis).__name__} does not have")
    table = vis.dynamics(pandas=False, progress=False)
    return np.asarray(table[name], dtype=np.float64)[shown]


def _point_colors(colors: np.ndarray, mode: str, labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    if mode == "prediction":
        return colors[pred]
    if mode == "correct":
        c = style()["colors"]
        return np.where((pred == labels)[:, None], np.array(_rgb(c["correct"]), np.uint8),
                        np.array(_rgb(c["wrong"]), np.uint8))
    return colors[labels]


def visible_mask(labels, is_test, pred, previous, *, split="both", hidden=(), only_misclassified=False,
                 only_flipped=False) -> np.ndarray:
    """Which points show under the widget's filters (style.json filters; js/src/filters.js)."""
    ok = np.ones(len(labels), dtype=bool)
    if split == "test":
        ok &= is_test
    elif split == "train":
        ok &= ~is_test
    if len(hidden):
        ok &= ~np.isin(labels, np.asarray(list(hidden), dtype=np.int64))
    if only_misclassified:
        ok &= pred != labels
    if only_flipped:
        ok &= (pred != previous) if previous is not None else np.zeros(len(labels), bool)
    return ok


def trail_sample(chosen_global: np.ndarray, max_samples: int | None = None) -> np.ndarray:
    """Positions into ``chosen_global`` (ascending global indices) of the trails drawn: at most
    style.json trails.max_samples, evenly spaced (js/src/style.js trailSample)."""
    m = len(chosen_global)
    cap = style()["trails"]["max_samples"] if max_samples is None else max_samples
    if m <= cap:
        return np.arange(m)
    return (np.arange(cap) * m) // cap


def render(vis: Any, epoch: int, *, size: tuple[int, int] = (640, 640), view: dict | None = None,
           extent: Sequence[float] | None = None, selected: Iterable[int] = (), indices: np.ndarray | None = None,
           color_by: str = "label", split: str = "both", hidden: Iterable[int] = (),
           only_misclassified: bool = False, only_flipped: bool = False, trails: bool = False,
           point_radius: float | None = None, point_size: float = 1.0, point_opacity: float | None = None,
           title: str | None = None, legend: bool = True, scale: int = 2,
           map_fill: str | None = None, dynamics: Any = None, dynamics_filter: dict | None = None) -> Image.Image:
    """One picture of ``epoch``: map, points, selection; returns an RGB PIL image.

    ``size`` is the map's size in pixels (CSS px of the widget's map; a title line above and a
    legend below are added when asked for); ``indices`` restricts the drawn samples (the widget's
    display sample); ``point_radius`` (CSS px) replaces the automatic radius, ``point_size``
    multiplies it, ``point_opacity`` replaces the automatic alpha (as the widget's traits do);
    ``scale`` is the device pixel ratio (2 draws at twice the resolution and scales down, for
    smooth pictures; 1 draws exactly as a browser at devicePixelRatio 1).

    ``color_by`` is "label", "prediction", "correct" or a training-dynamics column ("aum",
    "confidence", ... as ``vis.dynamics()`` names them), drawn on viridis as the widget does;
    ``dynamics_filter`` ({column, min, max}, None ends open) hides points whose statistic lies
    outside [min, max] (NaN never passes). ``dynamics`` (a mapping of columns aligned with the
    drawn samples) saves computing ``vis.dynamics()``.
    """
    epochs = list(vis.epochs)
    if epoch not in epochs:
        raise DVIError(f"unknown epoch {epoch!r}; valid epochs: {epochs}")
    W, H = int(size[0]), int(size[1])
    if W < 16 or H < 16:
        raise DVIError(f"picture size must be at least 16 x 16 pixels, got {W} x {H}")
    st = style()
    P = st["points"]
    S = max(1, int(scale))
    extent = list(vis.extent if extent is None else extent)
    cx, cy, k = view_transform(extent, W, H, view)
    zoom = k / fit_view(extent, W, H)[2]
    labels = np.asarray(vis.labels).astype(np.int64)
    n = len(labels)
    shown = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    split_arr = np.asarray(vis.split) if getattr(vis, "split", None) is not None else np.full(n, "train")
    pred_all = np.asarray(vis.predictions(epoch)).astype(np.int64)
    k_ep = epochs.index(epoch)
    prev_all = np.asarray(vis.predictions(epochs[k_ep - 1])).astype(np.int64) if k_ep > 0 else None
    lab, pred = labels[shown], pred_all[shown]
    prev = prev_all[shown] if prev_all is not None else None
    is_test = split_arr[shown] == "test"
    ok = visible_mask(lab, is_test, pred, prev, split=split, hidden=list(hidden),
                      only_misclassified=only_misclassified, only_flipped=only_flipped)
    colors = np.asarray(vis.colors, dtype=np.uint8).reshape(-1, 3)
    colorbar = None
    if color_by in CLASS_MODES:
        pc = _point_colors(colors, color_by, lab, pred).astype(np.float64)
    else:
        stat = _dynamics_column(vis, str(color_by), shown, dynamics)
        pc = stat_colors(stat).astype(np.float64)
        colorbar = (str(color_by), *stat_range(stat), bool((~np.isfinite(stat)).any()))
    dyn_filter = dynamics_filter or {}
    if dyn_filter.get("column"):
        v = _dynamics_column(vis, str(dyn_filter["column"]), shown, dynamics)
        lo = -np.inf if dyn_filter.get("min") is None else float(dyn_filter["min"])
        hi = np.inf if dyn_filter.get("max") is None else float(dyn_filter["max"])
        with np.errstate(invalid="ignore"):
            ok &= (v >= lo) & (v <= hi)  # NaN never passes
    sel = np.zeros(n, dtype=bool)
    sel_idx = np.asarray(list(selected), dtype=np.int64)
    if sel_idx.size:
        sel[sel_idx[(sel_idx >= 0) & (sel_idx < n)]] = True
    sel_shown = sel[shown]
    xy = _to_screen(np.asarray(vis.embedding(epoch), dtype=np.float64)[shown], cx, cy, k, W, H) * S

    canvas = Image.new("RGBA", (W * S, H * S), _rgb(map_fill or st["map"]["background_fallback"]) + (255,))
    _paint_map(canvas, vis.background(epoch), vis.background_extent(epoch), cx, cy, k, S)
    image = np.asarray(canvas.convert("RGB"), dtype=np.float64).copy()

    n_visible = int(ok.sum())
    r = float(point_radius) if point_radius is not None else _radius_rule(n_visible, W, H, zoom, point_size)
    alpha = float(point_opacity) if point_opacity is not None else _opacity_rule(n_visible, r, W, H, zoom)
    any_sel = bool(sel_shown[ok].any())
    wrong = pred != lab
    rest = np.flatnonzero(ok & ~sel_shown)
    chosen = np.flatnonzero(ok & sel_shown)
    dev = lambda v: int(np.floor(v * S + 0.5))  # noqa: E731  radius in device px, Math.round
    extra_w = P["misclassified"]["extra_radius"]
    parts: list = []
    rank = 0
    for order, radius, a, ring_rgb, ring_a in (
        (rest, r, alpha * (P["dim"] if any_sel else 1.0),
         None if any_sel or r < P["outline"]["min_radius"] else _rgb(P["outline"]["color"]), P["outline"]["alpha"]),
        (chosen, r + P["selected"]["extra_radius"], 1.0, _rgb(P["selected"]["outline"]), 1.0),
    ):
        # draw order: the pass's points in index order, disks and crosses interleaved as the JS does
        for shape, rad, subset in (("disk", radius, order[~wrong[order]]), ("cross", radius + extra_w, order[wrong[order]])):
            ranks = rank + np.searchsorted(order, subset)
            for pix, seq, col, aa in _stamp_entries(xy[:, 0], xy[:, 1], subset, W * S, H * S, dev(rad), shape, pc,
                                                    a, ring_rgb, ring_a):
                parts.append((pix, _rerank(seq, ranks), col, aa))
        rank += len(order)
    composite(image, parts)
    canvas = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8), "RGB")

    if trails and any_sel and len(epochs) > 1:
        T = st["trails"]
        pick = chosen[trail_sample(shown[chosen])]
        paths = np.stack([_to_screen(np.asarray(vis.embedding(e), dtype=np.float64)[shown[pick]], cx, cy, k, W, H) * S
                          for e in epochs], axis=1)
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        segs = len(epochs) - 1
        lw = max(1, int(round(T["line_width"] * S)))
        for j, i in enumerate(pick):
            c = tuple(int(v * T["shade"]) for v in pc[i])
            for s in range(segs):
                a = T["alpha"] * (T["fade_from"] + (1 - T["fade_from"]) * (s + 1) / segs)
                d.line([tuple(paths[j, s]), tuple(paths[j, s + 1])], fill=c + (int(255 * a),), width=lw)
            (x0, y0), (x1, y1) = paths[j, -2], paths[j, -1]
            length = float(np.hypot(x1 - x0, y1 - y0))
            if length > 1e-6:  # arrowhead at the last epoch's end: the direction of travel
                ux, uy = (x1 - x0) / length, (y1 - y0) / length
                L = T["arrow_length"] * S
                tip = (x1, y1)
                left = (x1 - L * ux + 0.5 * L * uy, y1 - L * uy - 0.5 * L * ux)
                right = (x1 - L * ux - 0.5 * L * uy, y1 - L * uy + 0.5 * L * ux)
                d.polygon([tip, left, right], fill=c + (int(255 * T["alpha"]),))
        canvas = Image.alpha_composite(canvas.convert("RGBA"), layer).convert("RGB")
    img = canvas.resize((W, H), Image.Resampling.LANCZOS) if S > 1 else canvas
    return _frame(img, vis, title, legend, hidden=set(int(h) for h in hidden), colorbar=colorbar)


def _rerank(seq: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Map a subset's local drawing sequence (2 * position + is_fill) to the pass-wide one."""
    return ranks[seq // 2] * 2 + seq % 2


#: The colour bar's ramp in a picture's legend: width (px, at most; the picture may be narrower) and height.
COLORBAR_SIZE = (256, 12)


def _frame(img: Image.Image, vis: Any, title: str | None, legend: bool, hidden: set[int],
           colorbar: tuple[str, float, float, bool] | None = None) -> Image.Image:
    """Add a title line above and a legend below the map: class colours and names, or, when the
    points are coloured by a statistic (``colorbar``: its name, the range viridis spans, whether
    some samples have no value), the statistic's colour bar as the page shows it."""
    W, H = img.size
    font = _font(14)
    small = _font(12)
    head = 24 if title else 0
    if legend and colorbar is not None:
        return _frame_colorbar(img, title, head, colorbar, font, small)
    rows: list[list[tuple[int, str]]] = []
    if legend:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        classes = [str(c) for c in vis.classes]
        row: list[tuple[int, str]] = []
        x = 6
        for c, name in enumerate(classes):
            name = name if len(name) <= 40 else name[:39] + "…"
            w = 18 + int(probe.textlength(name, font=small)) + 12
            if row and x + w > W - 6:
                rows.append(row)
                row, x = [], 6
            row.append((c, name))
            x += w
        if row:
            rows.append(row)
        rows = rows[:6]
    foot = 18 * len(rows) + (6 if rows else 0)
    out = Image.new("RGB", (W, H + head + foot), (255, 255, 255))
    out.paste(img, (0, head))
    d = ImageDraw.Draw(out)
    if title:
        d.text((6, 4), title, fill=TEXT, font=font)
    colors = np.asarray(vis.colors, dtype=np.uint8).reshape(-1, 3)
    y = H + head + 4
    for row in rows:
        x = 6
        for c, name in row:
            col = tuple(int(v) for v in colors[c])
            d.rectangle((x, y + 3, x + 11, y + 14), fill=col if c not in hidden else None, outline=col)
            d.text((x + 16, y + 1), name, fill=TEXT if c not in hidden else MUTED, font=small)
            x += 18 + int(d.textlength(name, font=small)) + 12
        y += 18
    return out


def _frame_colorbar(img: Image.Image, title: str | None, head: int, colorbar: tuple[str, float, float, bool],
                    font, small) -> Image.Image:
    """The map with a title above and, below, the statistic's name, its low end, the viridis ramp,
    its high end and (when some samples have none) a grey swatch for "no value"."""
    name, lo, hi, missing = colorbar
    W, H = img.size
    out = Image.new("RGB", (W, H + head + 26), (255, 255, 255))
    out.paste(img, (0, head))
    d = ImageDraw.Draw(out)
    if title:
        d.text((6, 4), title, fill=TEXT, font=font)
    y = H + head + 6
    lo_s, hi_s = fmt_stat(lo), fmt_stat(hi)
    x = 6
    d.text((x, y), name, fill=TEXT, font=small)
    x += int(d.textlength(name, font=small)) + 10
    d.text((x, y), lo_s, fill=TEXT, font=small)
    x += int(d.textlength(lo_s, font=small)) + 4
    tail = 4 + int(d.textlength(hi_s, font=small)) + (12 + 16 + int(d.textlength("no value", font=small)) if missing else 0)
    bw = max(16, min(COLORBAR_SIZE[0], W - x - tail - 6))
    ramp = _viridis()[np.round(np.linspace(0, 255, bw)).astype(int)]
    out.paste(Image.fromarray(np.repeat(ramp[None], COLORBAR_SIZE[1], axis=0), "RGB"), (x, y + 1))
    x += bw + 4
    d.text((x, y), hi_s, fill=TEXT, font=small)
    if missing:
        x += int(d.textlength(hi_s, font=small)) + 12
        d.rectangle((x, y + 2, x + 11, y + 13), fill=MISSING_RGB)
        d.text((x + 16, y), "no value", fill=TEXT, font=small)
    return out


def _title(vis: Any, epoch: int) -> str:
    m = (getattr(vis, "metrics", {}) or {}).get(epoch, {})
    parts = [f"epoch {epoch}"]
    if "accuracy" in m:
        parts.append(f"accuracy {m['accuracy']:.3f}")
    if "ppr" in m:
        parts.append(f"ppr {m['ppr']:.3f}")
    return "   ".join(parts)


def widget_picture(w: "DVIWidget", *, size: tuple[int, int] | None = None, title: bool = True,
                   legend: bool = True, scale: int = 2, width: int = 800) -> Image.Image:
    """Widget ``w``'s current view as a PIL image: its epoch's map, the points under its filters,
    colouring, point size and opacity, the selection (and trails when on). ``size`` is the map's
    size in pixels; by default ``width`` wide at the map's aspect ratio (as the widget lays it out)."""
    vis = w.vis
    epoch = w.epoch if w.epoch is not None else vis.epochs[-1]
    meta = getattr(w, "meta", {}) or {}
    extent = meta.get("extent") or list(vis.extent)
    if size is None:
        size = (int(width), max(16, int(round(width / map_aspect(extent)))))
    opacity = getattr(w, "point_opacity", None)
    dyn = _widget_dynamics(w)
    return render(
        vis, int(epoch), size=size, view=dict(getattr(w, "view", {}) or {}),
        extent=extent, selected=list(w.selected),
        indices=w.display_indices if hasattr(w, "display_indices") else None,
        color_by=getattr(w, "color_by", "label"), split=getattr(w, "split_filter", "both"),
        hidden=list(getattr(w, "hidden_classes", []) or []),
        only_misclassified=bool(getattr(w, "only_misclassified", False)),
        only_flipped=bool(getattr(w, "only_flipped", False)), trails=bool(getattr(w, "show_trails", False)),
        point_size=float(getattr(w, "point_size", 1.0) or 1.0),
        point_opacity=float(opacity) if isinstance(opacity, (int, float)) and opacity > 0 else None,
        title=_title(vis, int(epoch)) if title else None, legend=legend, scale=scale,
        dynamics=dyn, dynamics_filter=dict(getattr(w, "dynamics_filter", {}) or {}))


def _widget_dynamics(w: "DVIWidget") -> dict | None:
    """The training-dynamics columns the widget sent the page (trait ``dynamics``, (K, n) float32
    for its displayed samples), so its picture colours and filters by the same values; None when
    the widget has none (then a picture asking for a statistic computes ``vis.dynamics()``)."""
    info = getattr(w, "dynamics_info", None) or {}
    raw = getattr(w, "dynamics", b"") or b""
    cols = list(info.get("columns") or [])
    if not cols or not raw:
        return None
    arr = np.frombuffer(bytes(raw), dtype="<f4")
    if arr.size % len(cols):
        return None
    arr = arr.reshape(len(cols), -1)
    return dict(zip(cols, arr))


def snapshot(w: "DVIWidget", path: str | os.PathLike, *, size: tuple[int, int] | None = None, title: bool = True,
             legend: bool = True, scale: int = 2) -> Path:
    """PNG of widget ``w``'s current view (see `widget_picture`) written to ``path``; ``size`` is the
    map's size in pixels (default 800 wide at the map's aspect ratio)."""
    img = widget_picture(w, size=size, title=title, legend=legend, scale=scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return write_bytes_atomic(path, buf.getvalue())


#: Width in pixels of the static picture in the widget's output (see `static_png`).
STATIC_WIDTH = 720


def static_png(w: "DVIWidget", width: int = STATIC_WIDTH) -> bytes:
    """PNG bytes of ``w``'s current view for the widget's output bundle: what a page without the
    widget manager (an nbconvert page offline, a viewer without widget support) shows instead
    of the live map. Drawn at device pixel ratio 1 with a title and legend, palette-compressed."""
    img = widget_picture(w, title=True, legend=True, scale=1, width=width)
    buf = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        buf, format="PNG", optimize=True)
    return buf.getvalue()


def gif_frames(vis: Any, epochs: Iterable[int] | None = None, *, size: tuple[int, int] = (480, 480),
               selected: Iterable[int] = (), color_by: str = "label", title: bool = True, legend: bool = True,
               **options: Any) -> list[Image.Image]:
    """The RGB frames ``to_gif`` writes, one per epoch."""
    eps = list(vis.epochs) if epochs is None else [int(e) for e in epochs]
    if not eps:
        raise DVIError("no fitted epochs to animate")
    sel = list(selected)
    return [render(vis, e, size=size, selected=sel, color_by=color_by,
                   title=_title(vis, e) if title else None, legend=legend, **options) for e in eps]


def to_gif(vis: Any, path: str | os.PathLike, epochs: Iterable[int] | None = None, *,
           size: tuple[int, int] = (480, 480), duration: int = 800, last_duration: int | None = 1600,
           loop: int = 0, selected: Iterable[int] = (), color_by: str = "label", **options: Any) -> Path:
    """Animated GIF of the epochs (all fitted ones by default), one frame per epoch, decision map
    behind the points; ``duration`` ms per frame (the last one held ``last_duration``)."""
    frames = gif_frames(vis, epochs, size=size, selected=selected, color_by=color_by, **options)
    # one palette for all frames (from a strip of every frame), so class colours do not shift between frames
    w0, h0 = frames[0].size
    strip = Image.new("RGB", (w0, h0 * len(frames)), (255, 255, 255))
    for j, f in enumerate(frames):
        strip.paste(f, (0, h0 * j))
    if len(frames) > 4:
        strip = strip.resize((w0, h0 * 4), Image.Resampling.NEAREST)
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [int(duration)] * len(pal)
    if last_duration is not None:
        durations[-1] = int(last_duration)
    buf = io.BytesIO()
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=durations, loop=int(loop),
                disposal=1, optimize=False)
    return write_bytes_atomic(path, buf.getvalue())


# ---------------------------------------------------------------- the widget's static fallback

#: The line shown under the static picture where the live widget cannot run.
FALLBACK_LINE = ("Static picture of epoch {epoch} (dvi_widget). The live map needs a running kernel: open this "
                 "notebook in JupyterLab, Notebook 7, VS Code, Voila or marimo and run the cell, or make an "
                 "offline page with w.export_html(\"map.html\").")


def fallback_bundle(w: "DVIWidget", bundle: Any) -> tuple[dict, dict]:
    """Add a static picture of ``w``'s current view to its output's MIME bundle.

    ``bundle``: what anywidget returns for the live view (``data`` or ``(data, metadata)``).
    Adds ``image/png`` (the picture), ``text/html`` (the picture and one line saying how to get
    the live map) and ``text/plain`` (that line). Front ends with the widget manager show the
    live view (the widget-view mimetype ranks first); nbconvert pages of notebooks saved without
    widget state, and viewers without widget support, show the picture and the line. A picture
    that cannot be drawn leaves the live view alone and says so in the line.
    """
    import base64
    import html as _html

    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    data, metadata = dict(data or {}), dict(metadata or {})
    if w.epoch is None:  # a live view before its first epoch: nothing to draw yet
        data["text/plain"] = ("dvi_widget map, waiting for the first epoch. The live map needs a running kernel: "
                              "open this notebook in JupyterLab, Notebook 7, VS Code, Voila or marimo.")
        return data, metadata
    epoch = w.epoch
    line = FALLBACK_LINE.format(epoch=epoch)
    try:
        png = static_png(w)
    except Exception as e:  # noqa: BLE001 - the live view must still display
        data["text/plain"] = f"{line} (The static picture could not be drawn: {type(e).__name__}: {e})"
        return data, metadata
    b64 = base64.b64encode(png).decode("ascii")
    with Image.open(io.BytesIO(png)) as im:
        width, height = im.size
    data["image/png"] = b64
    metadata["image/png"] = {"width": width, "height": height}
    data["text/html"] = (
        f'<div class="dvi-static"><img src="data:image/png;base64,{b64}" width="{width}" height="{height}" '
        f'alt="{_html.escape(f"dvi_widget map, epoch {epoch}")}" style="max-width:100%;height:auto">'
        f'<p class="dvi-static-note">{_html.escape(line)}</p></div>')
    data["text/plain"] = line
    return data, metadata


#: The live view's text where the widget manager is missing, when the picture is an output of its own.
LIVE_LINE = ("dvi_widget live map: it needs the widget manager and a running kernel (the static picture "
             "beside it shows epoch {epoch}).")


def static_outputs(w: "DVIWidget", bundle: Any) -> list[tuple[dict, dict]]:
    """The widget's display in IPython as two outputs: the static picture of ``w``'s view
    (``image/png``, ``text/html`` with the line on how to get the live map, ``text/plain``), then
    the live view (``bundle``, anywidget's widget-view data, with a ``text/plain`` line).

    Why two: nbconvert's HTML page shows one MIME type per output, the widget view when the
    notebook was saved with widget state; offline that view stays empty, so the picture travels as
    an output of its own. Front ends whose widget manager renders the live view hide the picture
    (js/src/index.js looks for ``.dvi-static`` in the same cell's outputs). Before the first epoch
    of a live view there is no picture: the live view alone.
    """
    full, full_meta = fallback_bundle(w, bundle)
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    live = dict(data or {})
    if "image/png" not in full:
        if "text/plain" in full:
            live["text/plain"] = full["text/plain"]
        return [(live, dict(metadata or {}))]
    live["text/plain"] = LIVE_LINE.format(epoch=w.epoch)
    picture = {k: full[k] for k in ("image/png", "text/html", "text/plain")}
    picture_meta = {k: v for k, v in full_meta.items() if k == "image/png"}
    return [(picture, picture_meta), (live, dict(metadata or {}))]
