"""Pictures drawn in Python with Pillow, so they work with no browser attached
(nbclient, CI, a script): ``w.snapshot(path)`` and ``vis.to_gif(path)``.

Both draw what the widget draws: the epoch's decision map (class colours, pale
bands at the boundaries) behind the points, points coloured by label,
prediction or correctness, the unselected points dimmed while there is a
selection, the selected ones on top with a dark ring. The same view transform
as the widget's (js/src/view.js) places the data: one uniform scale, the
extent fitted with a 4% margin, then the widget's saved centre and zoom.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..store.atomic import write_bytes_atomic
from ..errors import DVIError

MAP_BG = (250, 250, 250)  # the widget's --dvi-map-bg fallback
CORRECT_RGB = (26, 150, 65)  # js/src/colors.js
WRONG_RGB = (215, 25, 28)
TEXT = (31, 31, 31)
MUTED = (97, 97, 97)
MARGIN = 0.04  # js/src/view.js fitView


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType scaling
        return ImageFont.load_default()


def fit_view(extent: Sequence[float], width: float, height: float, margin: float = MARGIN) -> tuple[float, float, float]:
    """(cx, cy, k): the view that fits ``extent`` in width x height, as js/src/view.js fitView."""
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


def _point_colors(colors: np.ndarray, mode: str, labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    if mode == "prediction":
        return colors[pred]
    if mode == "correct":
        return np.where((pred == labels)[:, None], np.array(CORRECT_RGB, np.uint8), np.array(WRONG_RGB, np.uint8))
    return colors[labels]


def visible_mask(labels, is_test, pred, previous, *, split="both", hidden=(), only_misclassified=False,
                 only_flipped=False) -> np.ndarray:
    """Which points show under the widget's filters (js/src/filters.js visibilityMask)."""
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


def render(vis: Any, epoch: int, *, size: tuple[int, int] = (640, 640), view: dict | None = None,
           extent: Sequence[float] | None = None, selected: Iterable[int] = (), indices: np.ndarray | None = None,
           color_by: str = "label", split: str = "both", hidden: Iterable[int] = (),
           only_misclassified: bool = False, only_flipped: bool = False, trails: bool = False,
           point_radius: float | None = None, title: str | None = None, legend: bool = True,
           scale: int = 2) -> Image.Image:
    """One picture of ``epoch``: map, points, selection; returns an RGB PIL image.

    ``size`` is the map's size in pixels (a title line above and a legend below
    are added when asked for); ``indices`` restricts the drawn samples (the
    widget's display sample); ``scale`` supersamples for smooth points.
    """
    epochs = list(vis.epochs)
    if epoch not in epochs:
        raise DVIError(f"unknown epoch {epoch!r}; valid epochs: {epochs}")
    W, H = int(size[0]), int(size[1])
    if W < 16 or H < 16:
        raise DVIError(f"picture size must be at least 16 x 16 pixels, got {W} x {H}")
    extent = list(vis.extent if extent is None else extent)
    cx, cy, k = view_transform(extent, W, H, view)
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
    pc = _point_colors(colors, color_by, lab, pred)
    sel = np.zeros(n, dtype=bool)
    sel_idx = np.asarray(list(selected), dtype=np.int64)
    if sel_idx.size:
        sel[sel_idx[(sel_idx >= 0) & (sel_idx < n)]] = True
    sel_shown = sel[shown]
    xy = _to_screen(np.asarray(vis.embedding(epoch), dtype=np.float64)[shown], cx, cy, k, W, H) * scale

    S = scale
    canvas = Image.new("RGBA", (W * S, H * S), MAP_BG + (255,))
    _paint_map(canvas, vis.background(epoch), vis.background_extent(epoch), cx, cy, k, S)
    r = float(point_radius if point_radius is not None else (2.0 if len(shown) <= 20000 else 1.0)) * 1.25 * S
    any_sel = bool(sel_shown[ok].any())
    wrong = pred != lab

    def dots(order: np.ndarray, outline, alpha: int, ring: float) -> None:
        if not len(order):
            return
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        for i in order:
            x, y = xy[i]
            if x < -r or y < -r or x > W * S + r or y > H * S + r:
                continue
            fill = tuple(int(v) for v in pc[i])
            if wrong[i]:  # misclassified: a cross, as in the widget
                q = r * 1.15
                strokes = (((x - q, y - q), (x + q, y + q)), ((x - q, y + q), (x + q, y - q)))
                if outline is not None:  # both outlines first, so neither cuts through the other's colour
                    for a, b in strokes:
                        d.line((a, b), fill=outline, width=int(round(r * 1.1 + ring)))
                for a, b in strokes:
                    d.line((a, b), fill=fill, width=max(1, int(round(r * 1.1))))
                continue
            d.ellipse((x - r - ring, y - r - ring, x + r + ring, y + r + ring), fill=outline)
            d.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        if alpha < 255:
            a = np.asarray(layer.getchannel("A"), dtype=np.uint16) * alpha // 255
            layer.putalpha(Image.fromarray(a.astype(np.uint8), "L"))
        canvas.alpha_composite(layer)

    rest = np.flatnonzero(ok & ~sel_shown)
    chosen = np.flatnonzero(ok & sel_shown)
    if any_sel:
        dots(rest, None, 70, 0.0)  # dimmed, no outline (as in the widget)
    else:
        dots(rest, (45, 45, 45), 255, 0.6 * S)
    if trails and any_sel and len(epochs) > 1:
        paths = np.stack([_to_screen(np.asarray(vis.embedding(e), dtype=np.float64)[shown[chosen[:2000]]],
                                     cx, cy, k, W, H) * S for e in epochs], axis=1)
        d = ImageDraw.Draw(canvas)
        for j, i in enumerate(chosen[:2000]):
            c = tuple(int(v * 0.75) for v in pc[i])
            d.line([tuple(p) for p in paths[j]], fill=c + (220,), width=max(1, int(1.2 * S)))
    dots(chosen, (0, 0, 0), 255, 1.0 * S)
    img = canvas.convert("RGB").resize((W, H), Image.Resampling.LANCZOS) if S > 1 else canvas.convert("RGB")
    return _frame(img, vis, title, legend, hidden=set(int(h) for h in hidden))


def _frame(img: Image.Image, vis: Any, title: str | None, legend: bool, hidden: set[int]) -> Image.Image:
    """Add a title line above and a legend (class colours and names, as text) below the map."""
    W, H = img.size
    font = _font(14)
    small = _font(12)
    head = 24 if title else 0
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


def _title(vis: Any, epoch: int) -> str:
    m = (getattr(vis, "metrics", {}) or {}).get(epoch, {})
    parts = [f"epoch {epoch}"]
    if "accuracy" in m:
        parts.append(f"accuracy {m['accuracy']:.3f}")
    if "ppr" in m:
        parts.append(f"ppr {m['ppr']:.3f}")
    return "   ".join(parts)


def snapshot(w: Any, path: str | os.PathLike, *, size: tuple[int, int] | None = None, title: bool = True,
             legend: bool = True, scale: int = 2) -> Path:
    """PNG of widget ``w``'s current view: its epoch's map, the points under its filters and colouring,
    the selection (and trails when on), at ``size`` (default 800 x 600, the map's pixels)."""
    vis = w.vis
    epoch = w.epoch if w.epoch is not None else vis.epochs[-1]
    meta = getattr(w, "meta", {}) or {}
    img = render(
        vis, int(epoch), size=size or (800, 600), view=dict(getattr(w, "view", {}) or {}),
        extent=meta.get("extent") or None, selected=list(w.selected),
        indices=w.display_indices if hasattr(w, "display_indices") else None,
        color_by=getattr(w, "color_by", "label"), split=getattr(w, "split_filter", "both"),
        hidden=list(getattr(w, "hidden_classes", []) or []),
        only_misclassified=bool(getattr(w, "only_misclassified", False)),
        only_flipped=bool(getattr(w, "only_flipped", False)), trails=bool(getattr(w, "show_trails", False)),
        title=_title(vis, int(epoch)) if title else None, legend=legend, scale=scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return write_bytes_atomic(path, buf.getvalue())


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
