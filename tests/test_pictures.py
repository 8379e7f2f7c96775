"""Pictures drawn in Python: w.snapshot(path) and vis.to_gif(path)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from dvi_widget.errors import DVIError
from dvi_widget.outputs.pictures import fit_view, gif_frames, render
from dvi_widget.widget.widget import DVIWidget


def _map_rect(vis, epoch, size):
    """Screen rectangle (left, top, right, bottom) of the epoch's decision map in a default picture."""
    cx, cy, k = fit_view(vis.extent, *size)
    x0, x1, y0, y1 = vis.background_extent(epoch)
    W, H = size
    return ((x0 - cx) * k + W / 2, (cy - y1) * k + H / 2, (x1 - cx) * k + W / 2, (cy - y0) * k + H / 2)


def _map_agreement(frame: np.ndarray, vis, epoch, size, head: int) -> float:
    """Share of map pixels (away from points) whose colour matches the decision map's there."""
    l, t, r, b = _map_rect(vis, epoch, size)
    bg = vis.background(epoch)[..., :3].astype(int)
    bh, bw = bg.shape[:2]
    rng = np.random.default_rng(0)
    xs = rng.uniform(l + 2, r - 2, 400)
    ys = rng.uniform(t + 2, b - 2, 400)
    cx, cy, k = fit_view(vis.extent, *size)
    pts = vis.embedding(epoch)
    sx = (pts[:, 0] - cx) * k + size[0] / 2
    sy = (cy - pts[:, 1]) * k + size[1] / 2
    good = total = 0
    for x, y in zip(xs, ys):
        if np.min((sx - x) ** 2 + (sy - y) ** 2) < 8 ** 2:
            continue  # under or next to a point
        u = int((x - l) / (r - l) * bw)
        v = int((y - t) / (b - t) * bh)
        want = bg[min(v, bh - 1), min(u, bw - 1)]
        got = frame[int(y) + head, int(x), :3].astype(int)
        total += 1
        good += int(np.abs(got - want).max() <= 40)
    assert total > 30
    return good / total


def test_gif_has_one_frame_per_epoch_with_the_map(small_run, tmp_path):
    size = (320, 320)
    path = small_run.to_gif(tmp_path / "run.gif", size=size, legend=False)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(small_run.epochs)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert frames[0].shape == (320 + 24, 320, 3)  # title line above the map
    for e, frame in zip(small_run.epochs, frames):
        assert _map_agreement(frame, small_run, e, size, head=24) > 0.85, f"epoch {e}: map missing"
    assert not np.array_equal(frames[0], frames[-1])


def test_gif_of_chosen_epochs_and_bad_epoch(small_run, tmp_path):
    path = small_run.to_gif(tmp_path / "two.gif", epochs=[1, 3], size=(160, 160), duration=300)
    with Image.open(path) as gif:
        assert gif.n_frames == 2
        assert gif.info.get("loop") == 0
    with pytest.raises(DVIError, match="valid epochs"):
        small_run.to_gif(tmp_path / "bad.gif", epochs=[7])
    assert not (tmp_path / "bad.gif").exists()


def test_snapshot_shows_map_points_and_selection(small_run, tmp_path):
    w = DVIWidget(small_run)
    w.epoch = 2
    size = (400, 300)
    plain = np.asarray(Image.open(w.snapshot(tmp_path / "plain.png", size=size, title=False, legend=False)))
    assert plain.shape == (300, 400, 3)
    assert _map_agreement(plain, small_run, 2, size, head=0) > 0.85
    # points: the class colours of the points show where the embedding puts them
    colors = small_run.colors.astype(int)
    cx, cy, k = fit_view(small_run.extent, *size)
    pts = small_run.embedding(2)
    lab = small_run.labels
    pred = small_run.predictions(2)
    hits = 0
    checked = 0
    for i in range(0, 1000, 25):
        if pred[i] != lab[i]:
            continue  # crosses: their centre pixel is the cross's, fine, but keep the check simple
        x = int(round((pts[i, 0] - cx) * k + size[0] / 2))
        y = int(round((cy - pts[i, 1]) * k + size[1] / 2))
        if not (0 <= x < size[0] and 0 <= y < size[1]):
            continue
        checked += 1
        patch = plain[max(0, y - 2):y + 3, max(0, x - 2):x + 3].reshape(-1, 3).astype(int)
        # the point's own colour or another point's drawn over it: some class colour nearby
        if np.min(np.abs(patch[:, None, :] - colors[None]).max(axis=2)) <= 40:
            hits += 1
    assert checked > 10 and hits / checked > 0.8
    # selection: the rest dims (closer to the map), selected points keep full colour
    w.select(list(range(0, 1000, 10)))
    sel = np.asarray(Image.open(w.snapshot(tmp_path / "sel.png", size=size, title=False, legend=False)))
    assert not np.array_equal(plain, sel)
    map_only = np.asarray(render(small_run, 2, size=size, hidden=range(10), legend=False), dtype=int)
    far = lambda img: np.abs(np.asarray(img, dtype=int) - map_only).sum()
    assert far(sel) < 0.6 * far(plain)  # most points dimmed towards the map
    for i in range(0, 1000, 10):  # selected points at full colour (a cross or a disk in its class colour)
        if pred[i] != lab[i]:
            continue
        x = int(round((pts[i, 0] - cx) * k + size[0] / 2))
        y = int(round((cy - pts[i, 1]) * k + size[1] / 2))
        if 2 <= x < size[0] - 2 and 2 <= y < size[1] - 2:
            patch = sel[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int)
            assert np.min(np.abs(patch[:, None, :] - colors[None]).max(axis=2)) <= 40


def test_snapshot_follows_view_and_filters(small_run, tmp_path):
    w = DVIWidget(small_run)
    a = np.asarray(Image.open(w.snapshot(tmp_path / "a.png", size=(300, 300), legend=False)))
    w.view = {"cx": 0.0, "cy": 0.0, "zoom": 4.0}
    b = np.asarray(Image.open(w.snapshot(tmp_path / "b.png", size=(300, 300), legend=False)))
    assert not np.array_equal(a, b)
    w.view = {}
    w.hidden_classes = list(range(10))  # every class hidden: only the map is left
    c = render(small_run, w.epoch, size=(300, 300), hidden=w.hidden_classes, legend=False)
    assert (np.asarray(c).sum(axis=2) < 150).sum() == 0  # no point outlines at all


def test_snapshot_unwritable_path(small_run, tmp_path):
    w = DVIWidget(small_run)
    with pytest.raises(DVIError, match="does not exist"):
        w.snapshot(tmp_path / "missing" / "x.png")
    assert os.listdir(tmp_path) == []


def test_frames_render_hostile_class_names_as_text(small_run):
    class Named:
        def __getattr__(self, name):
            return getattr(small_run, name)
        classes = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"] + [str(i) for i in range(2, 10)]
    frames = gif_frames(Named(), [1], size=(200, 200))
    assert frames[0].size[0] == 200 and frames[0].size[1] > 200 + 24  # legend rows added
