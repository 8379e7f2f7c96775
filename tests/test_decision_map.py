"""Decision maps: shape, orientation (row 0 = top), colours by class, pale boundaries, extents."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_support import FAST_FIT

from dvi_widget.engine.decision_map import grid_points, padded_extent, pixel_of


def decoded_classes(vis, epoch, flip=False):
    """The class of every pixel centre, decoded and classified here (row 0 = ymax unless flip)."""
    xmin, xmax, ymin, ymax = vis.background_extent(epoch)
    size = vis.background(epoch).shape[0]
    xs = xmin + (np.arange(size) + 0.5) * (xmax - xmin) / size
    ys = ymax - (np.arange(size) + 0.5) * (ymax - ymin) / size
    if flip:
        ys = ys[::-1]
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    with torch.no_grad():
        p = torch.softmax(vis.head(epoch)(torch.from_numpy(vis.inverse(epoch, pts))), 1).numpy()
    return p.argmax(1).reshape(size, size), p


def test_background_is_an_rgba_image_of_the_grid_size(small_run):
    for e in small_run.epochs:
        bg = small_run.background(e)
        assert bg.shape == (FAST_FIT["grid"], FAST_FIT["grid"], 4) and bg.dtype == np.uint8
        assert (bg[..., 3] == 255).all()


def test_first_row_is_the_top_of_the_extent(small_run):
    for e in small_run.epochs:
        stored = small_run.background_classes(e)
        upright, _ = decoded_classes(small_run, e)
        flipped, _ = decoded_classes(small_run, e, flip=True)
        assert (stored == upright).mean() > 0.99
        assert (stored == flipped).mean() < (stored == upright).mean() - 0.05


def test_each_pixel_shows_its_class_colour_blended_with_white(small_run):
    e = small_run.epochs[-1]
    bg = small_run.background(e)[..., :3].astype(np.float64)
    cls, _ = decoded_classes(small_run, e)
    tint = (255 - bg).reshape(-1, 3)                         # how far from white, per channel
    palette = 255 - small_run.colors.astype(np.float64)      # (C, 3)
    strong = tint.sum(1) > 40                                # rounding dominates near-white pixels
    cos = (tint[strong] @ palette.T) / (np.linalg.norm(tint[strong], axis=1)[:, None]
                                        * np.linalg.norm(palette, axis=1)[None, :] + 1e-9)
    assert strong.mean() > 0.5
    assert (cos.argmax(1) == cls.ravel()[strong]).mean() > 0.97


def test_boundaries_show_as_pale_bands(small_run):
    """Pixels whose top-2 probabilities nearly tie are lighter than confident ones."""
    e = small_run.epochs[-1]
    bg = small_run.background(e)[..., :3].astype(np.float64)
    _, p = decoded_classes(small_run, e)
    top2 = np.sort(p, 1)[:, -2:]
    margin = (top2[:, 1] - top2[:, 0]).reshape(bg.shape[:2])
    whiteness = bg.mean(2)
    unsure, sure = margin < 0.1, margin > 0.8
    assert unsure.any() and sure.any()
    assert whiteness[unsure].mean() > whiteness[sure].mean() + 20
    assert whiteness[unsure].min() > 230, "near-white below the threshold"


def test_background_extent_covers_the_embedding(small_run):
    for e in small_run.epochs:
        xmin, xmax, ymin, ymax = small_run.background_extent(e)
        emb = small_run.embedding(e)
        assert xmin < emb[:, 0].min() and emb[:, 0].max() < xmax
        assert ymin < emb[:, 1].min() and emb[:, 1].max() < ymax


def test_vis_extent_is_the_union_of_the_epoch_extents(small_run):
    ext = np.array([small_run.background_extent(e) for e in small_run.epochs])
    assert small_run.extent == (ext[:, 0].min(), ext[:, 1].max(), ext[:, 2].min(), ext[:, 3].max())
    xmin, xmax, ymin, ymax = small_run.extent
    for e in small_run.epochs:
        emb = small_run.embedding(e)
        assert (emb[:, 0] > xmin).all() and (emb[:, 0] < xmax).all()
        assert (emb[:, 1] > ymin).all() and (emb[:, 1] < ymax).all()


def test_grid_and_pixel_helpers_are_inverse():
    ext = padded_extent(np.array([[0.0, 0.0], [2.0, 1.0]]))
    pts = grid_points(ext, 8)
    r, c = pixel_of(pts, ext, 8)
    assert np.array_equal(r, np.repeat(np.arange(8), 8)) and np.array_equal(c, np.tile(np.arange(8), 8))
    assert pts[0, 1] > pts[-1, 1], "row 0 is at the top"


def test_the_map_fades_far_from_every_sample_and_keeps_its_classes():
    """Far from the shown samples the decoder extrapolates (a mottle the Fourier input paints): the map is
    drawn lighter there, at full strength near samples, and the class of every pixel is unchanged."""
    from dvi_widget.engine.decision_map import FADE_FAR, FADE_FLOOR, FADE_NEAR, data_proximity, decision_map
    from dvi_widget.engine.vismodel import VisModel
    from dvi_widget.palette import class_colors

    torch.manual_seed(0)
    model = VisModel(6, 16, 2, fourier=16, fourier_scale=6.0).eval()
    head = torch.nn.Linear(6, 4)
    with torch.no_grad():      # confident classes, so the paint is strong where it is not faded
        head.weight.mul_(20)
    points = np.array([[0.0, 0.0], [0.1, 0.05]], np.float32)     # both in one corner of the extent
    extent = (-0.05, 1.95, -0.05, 1.95)
    size = 64
    colors = class_colors(4)
    plain, cls = decision_map(model, head, extent, size, colors, 0.1, torch.device("cpu"))
    faded, cls2 = decision_map(model, head, extent, size, colors, 0.1, torch.device("cpu"), points=points)
    assert np.array_equal(cls, cls2), "the classes shown (map_consistency's) do not change"
    w = data_proximity(points, extent, size)
    near, far = w == 1.0, np.isclose(w, FADE_FLOOR)
    assert near.any() and far.mean() > 0.5
    assert np.array_equal(faded[near], plain[near]), f"full strength within {FADE_NEAR:.0%} of the side of a sample"
    tint_plain = (255.0 - plain[..., :3]).sum(2)
    tint_faded = (255.0 - faded[..., :3]).sum(2)
    assert tint_plain[far].mean() > 60, "the unfaded map is coloured there"
    assert tint_faded[far] == pytest.approx(FADE_FLOOR * tint_plain[far], abs=3), \
        f"beyond {FADE_FAR:.0%} of the side, {FADE_FLOOR} of the colour's strength"
    ramp = (w < 1) & (w > FADE_FLOOR)
    assert ramp.any() and (np.diff(w[-1]) <= 1e-6).all() and w[-1, 0] == 1.0 and np.isclose(w[-1, -1], FADE_FLOOR), \
        "along the bottom row (the samples lie at its left end) the weight falls with distance"


def test_a_sample_whose_pixel_shows_another_class_settles_on_the_nearest_pixel_of_its_own():
    """settle_on_map: the map pixel under each sample must show its predicted class (map_consistency).
    A sample whose class the decoder gives only at a pixel centre two columns away moves there, a
    few pixels, not farther; samples already on a pixel of their class stay where they are."""
    from dvi_widget.engine.decision_map import settle_on_map

    size = 20
    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    pred = torch.tensor([0, 0, 0, 0, 1])
    extent = padded_extent(pos.numpy())
    px = (extent[1] - extent[0]) / size
    r, c = pixel_of(pos.numpy()[4:], extent, size)
    target = torch.tensor([extent[0] + (c[0] + 2 + 0.5) * px, extent[3] - (r[0] + 0.5) * px], dtype=torch.float32)

    class Identity(torch.nn.Module):
        def decode(self, z):
            return z

    class Island(torch.nn.Module):   # class 1 only within a third of a pixel of the target centre
        def forward(self, z):
            inside = ((z - target).abs() < px / 3).all(1).float()
            return torch.stack([torch.zeros_like(inside), 10 * inside - 5], 1)

    settled, moved = settle_on_map(Identity(), Island(), pos, pred, size)
    assert moved == 1
    assert torch.allclose(settled[4], target, atol=1e-5), "the nearest pixel centre where its class is shown"
    assert torch.equal(settled[:4], pos[:4]), "samples already on a pixel of their class stay"
    r2, c2 = pixel_of(settled.numpy()[4:], extent, size)
    assert (r2[0], c2[0]) == (r[0], c[0] + 2)
    _, moved_near = settle_on_map(Identity(), Island(), pos, pred, size, reach=1)
    assert moved_near == 0, "within one pixel there is no centre of its class"
