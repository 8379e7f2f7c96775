"""The default colours stay apart for colour-blind viewers, and a run's map and points agree.

Safety is computed, not asserted: each palette is passed through a simulation of
deuteranomaly and protanomaly at full severity (Machado, Oliveira & Fernandes 2009, as
implemented by colorspacious) and the smallest distance between any two of its colours is
measured in CAM02-UCS (a perceptually uniform space; about 1 unit is a just-noticeable
difference, points of different classes need many). The thresholds sit where the old default
(Tableau-10) fails, so the check can fail.
"""
from __future__ import annotations

import itertools
import json
from importlib import resources

import numpy as np
import pytest

from dvi_widget.engine.decision_map import shade
from dvi_widget.palette import class_colors, legacy_class_colors, recolor_map

colorspacious = pytest.importorskip("colorspacious")

CVD = ("deuteranomaly", "protanomaly")
POINT_MIN = 12.0   # CAM02-UCS distance between point colours, under each simulated deficiency
TINT_MIN = 9.0     # between the decision map's strongest tints (white mixed in, engine/decision_map.py)
PAIR_MIN = 30.0    # the "correct?" colouring's two colours


def min_distance(rgb: np.ndarray, cvd: str | None) -> float:
    """Smallest CAM02-UCS distance between any two of the (K, 3) uint8 colours, seen with `cvd`."""
    x = np.asarray(rgb, np.float64) / 255.0
    if cvd is not None:
        x = np.clip(colorspacious.cspace_convert(x, {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}, "sRGB1"), 0, 1)
    j = colorspacious.cspace_convert(x, "sRGB1", "CAM02-UCS")
    return min(float(np.linalg.norm(j[a] - j[b])) for a, b in itertools.combinations(range(len(j)), 2))


def strongest_tint(rgb: np.ndarray) -> np.ndarray:
    """The map's most saturated pixel of each class: shade() at a margin of 1."""
    c = len(rgb)
    return shade(np.eye(c, dtype=np.float32), np.asarray(rgb), threshold=0.1)[:, :3]


@pytest.mark.parametrize("n_classes", range(2, 11))
@pytest.mark.parametrize("cvd", CVD)
def test_class_colours_stay_apart_for_colour_blind_viewers(n_classes, cvd):
    rgb = class_colors(n_classes)
    assert min_distance(rgb, cvd) >= POINT_MIN
    assert min_distance(strongest_tint(rgb), cvd) >= TINT_MIN


def test_the_check_fails_for_the_old_tableau_palette():
    # Tableau-10's green and red (and orange and green) merge for red-green colour blindness
    old = legacy_class_colors(10)
    assert min(min_distance(old, cvd) for cvd in CVD) < POINT_MIN / 2
    assert min_distance(old, None) >= POINT_MIN  # ... while looking distinct to normal vision


def test_correct_and_wrong_colours_are_a_safe_pair():
    style = json.loads(resources.files("dvi_widget").joinpath("style.json").read_text())
    pair = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in (style["colors"]["correct"], style["colors"]["wrong"])])
    for cvd in (None, *CVD, "tritanomaly"):
        assert min_distance(pair, cvd) >= PAIR_MIN, cvd


def test_palette_has_one_colour_per_class_and_no_repeats():
    for c in (1, 7, 8, 10, 11, 40):
        rgb = class_colors(c)
        assert rgb.shape == (c, 3) and rgb.dtype == np.uint8
        assert len({tuple(v) for v in rgb}) == c


def test_a_map_painted_with_the_old_palette_is_repainted_in_the_new_one():
    rng = np.random.default_rng(0)
    c = 10
    probs = rng.dirichlet(np.full(c, 0.3), size=64 * 64).astype(np.float32)
    grid_class = probs.argmax(1).reshape(64, 64)
    old = shade(probs, legacy_class_colors(c), 0.1).reshape(64, 64, 4)
    want = shade(probs, class_colors(c), 0.1).reshape(64, 64, 4)
    got = recolor_map(old, grid_class, legacy_class_colors(c), class_colors(c))
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2  # rounding of the stored 8-bit map
    assert recolor_map(want, grid_class, class_colors(c), class_colors(c)) is want  # same palette: untouched


def test_a_run_fitted_with_the_old_palette_shows_its_map_in_the_new_colours(small_run_copy):
    """A run fitted before fits recorded their palette (no ``class_colors`` in fit.npz, map painted
    with Tableau-10) reads back with its map in today's colours, which the points use."""
    import dvi_widget as dvi

    fresh = dvi.Visualization(small_run_copy)
    e = fresh.epochs[-1]
    want = fresh.background(e)
    c = len(fresh.classes)
    path = fresh.run.fit_dir(e) / "fit.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "class_colors"}
    assert "class_colors" not in arrays
    arrays["background"] = recolor_map(arrays["background"], arrays["grid_class"], class_colors(c), legacy_class_colors(c))
    assert np.abs(arrays["background"].astype(int) - want.astype(int)).max() > 40  # the old map really looks different
    np.savez(path, **arrays)
    got = dvi.Visualization(small_run_copy).background(e)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 3
