"""Class colours: one fixed palette shared by the decision maps, the widget and the pictures.

The colours are chosen to stay apart for people with red-green colour blindness:

- up to 7 classes: Okabe & Ito's palette ("Color Universal Design", 2008) without its black
  (black points vanish on a dark theme, and a black class's map tint is a grey that reads as
  "uncertain");
- 8 to 10 classes: Petroff's 10-colour sequence ("Accessible Color Sequences for Data
  Visualization", arXiv:2107.02270, 2021; matplotlib's ``petroff10`` style), chosen under
  simulated deuteranopia, protanopia and tritanopia;
- beyond 10 classes no qualitative palette keeps every pair apart under colour-vision
  deficiency: the 10 are followed by evenly spaced hues, and the legend's isolate action
  (click a class to show it alone) is the way to tell classes apart.

``tests/test_palette.py`` computes the smallest distance between any two colours in CAM02-UCS
after simulating deuteranomaly and protanomaly at full severity (Machado et al. 2009, through
the colorspacious library), for the points and for the lightened map tints.

Maps painted with an earlier palette (runs fitted before the change) are recoloured when they
are read (:func:`recolor_map`), so a run's map and its points always agree.
"""
from __future__ import annotations

import colorsys

import numpy as np

# Okabe-Ito without black, in an order that puts the most distinct colours first
OKABE_ITO = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (213, 94, 0), (86, 180, 233), (204, 121, 167), (240, 228, 66),
]
# Petroff's 10-colour sequence (its published order)
PETROFF10 = [
    (63, 144, 218), (255, 169, 14), (189, 31, 1), (148, 164, 162), (131, 45, 182),
    (169, 107, 89), (231, 99, 0), (185, 172, 112), (113, 117, 129), (146, 218, 221),
]
# The palette before CVD-safe defaults (Tableau-10, then hues): maps fitted with it are recoloured.
_TABLEAU10 = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def _hues(count: int) -> list[tuple[int, int, int]]:
    """Extra colours beyond the fixed lists: golden-ratio hue steps keep neighbours in class order apart."""
    out = []
    for i in range(count):
        h = (0.07 + i * 0.61803398875) % 1.0
        s = 0.55 + 0.35 * ((i // 7) % 2)
        v = 0.85 - 0.25 * ((i // 3) % 2)
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def class_colors(n_classes: int) -> np.ndarray:
    """(n_classes, 3) uint8 RGB colours: Okabe-Ito up to 7 classes, Petroff-10 up to 10, then hues."""
    base = OKABE_ITO if n_classes <= len(OKABE_ITO) else PETROFF10
    colors = list(base[:n_classes]) + _hues(max(0, n_classes - len(base)))
    return np.asarray(colors, dtype=np.uint8).reshape(n_classes, 3)


def legacy_class_colors(n_classes: int) -> np.ndarray:
    """(n_classes, 3) uint8: the palette maps were painted with before the CVD-safe defaults."""
    colors = list(_TABLEAU10[:n_classes]) + _hues(max(0, n_classes - len(_TABLEAU10)))
    return np.asarray(colors, dtype=np.uint8).reshape(n_classes, 3)


def recolor_map(background: np.ndarray, grid_class: np.ndarray, painted: np.ndarray,
                colors: np.ndarray) -> np.ndarray:
    """A decision map painted with the ``painted`` palette, repainted with ``colors``.

    The engine paints each pixel as white mixed with its class colour,
    ``rgb = 255 - strength * (255 - colour)`` (engine/decision_map.py ``shade``), so each
    pixel's strength can be read back from the channel where its old colour is furthest from
    white and applied to the new colour. ``grid_class`` (H, W) is the class each pixel shows.
    Returns a new (H, W, C) uint8 array (alpha, if any, kept).
    """
    painted = np.asarray(painted, np.float32)
    colors = np.asarray(colors, np.float32)
    if np.array_equal(painted, colors):
        return background
    cls = np.clip(np.asarray(grid_class, np.int64), 0, len(colors) - 1)
    old = 255.0 - painted[cls]                                  # (H, W, 3)
    ch = old.argmax(-1)[..., None]
    span = np.take_along_axis(old, ch, -1)
    got = 255.0 - np.take_along_axis(background[..., :3].astype(np.float32), ch, -1)
    strength = np.where(span > 0, got / np.maximum(span, 1e-6), 0.0)
    out = background.copy()
    out[..., :3] = np.clip(np.round(255.0 - strength * (255.0 - colors[cls])), 0, 255).astype(np.uint8)
    return out
