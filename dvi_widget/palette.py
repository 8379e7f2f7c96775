"""Class colours: one fixed palette shared by the decision maps, the widget and the pictures."""
from __future__ import annotations

import colorsys

import numpy as np

# Tableau-10 first (familiar, colour-blind friendlier than HSV), then evenly spaced hues.
_TABLEAU10 = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def class_colors(n_classes: int) -> np.ndarray:
    """(n_classes, 3) uint8 RGB colours; the first ten are Tableau-10."""
    colors = list(_TABLEAU10[:n_classes])
    extra = n_classes - len(colors)
    for i in range(extra):
        # golden-ratio hue steps keep neighbours in class order apart
        h = (0.07 + i * 0.61803398875) % 1.0
        s = 0.55 + 0.35 * ((i // 7) % 2)
        v = 0.85 - 0.25 * ((i // 3) % 2)
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.asarray(colors, dtype=np.uint8).reshape(n_classes, 3)
