"""Before/after pictures of the decision map's fade away from the samples (engine/decision_map.py).

The default decoder reads random Fourier features of its 2-D input (``FitConfig.decoder_fourier``),
which lets it carve the small regions ppr needs, but far from every sample it extrapolates a fine
mottle of classes that no sample supports. ``decision_map(..., points=...)`` now fades the colour
with the distance to the nearest shown sample (``data_proximity``). This script redraws the last
fitted epoch of a run both ways, from the stored model and head (no refit), with the project's own
snapshot code (``dvi_widget.outputs.pictures.render``), and reports how much of the map's area is
painted at full strength and how mottled the far region is (class changes between adjacent pixels
farther than ``FADE_FAR`` from any sample, before and after: the classes are the same, the contrast
of their colours is what changes).

Usage (from the repository root)::

    python benchmarks/map_fade.py RUN --out benchmarks/pictures --name digits
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


class MapView:
    """A Visualization whose background of one epoch is replaced (what pictures.render draws)."""

    def __init__(self, vis, epoch: int, background: np.ndarray):
        self._vis, self._epoch, self._bg = vis, epoch, background

    def __getattr__(self, name):
        return getattr(self._vis, name)

    def background(self, epoch):
        return self._bg if epoch == self._epoch else self._vis.background(epoch)


def contrast(rgba: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute colour difference between horizontally adjacent pixels inside ``mask``."""
    d = np.abs(np.diff(rgba[..., :3].astype(np.float32), axis=1)).sum(2)
    m = mask[:, 1:] & mask[:, :-1]
    return float(d[m].mean()) if m.any() else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a fitted run directory")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "pictures"))
    ap.add_argument("--name", default="run", help="file name stem: NAME-map-before.png, NAME-map-after.png")
    ap.add_argument("--size", type=int, default=440)
    opts = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch
    import dvi_widget as dvi
    from dvi_widget.engine.decision_map import FADE_FAR, data_proximity, decision_map
    from dvi_widget.engine.vismodel import load_vismodel
    from dvi_widget.outputs.pictures import render
    from dvi_widget.palette import class_colors
    from dvi_widget.store.heads import load_head
    from dvi_widget.store.rundir import RunDir, load_json

    torch.set_num_threads(1)
    vis = dvi.Visualization(opts.run)
    rd = RunDir(opts.run)
    e = vis.epochs[-1]
    cfg = load_json(rd.path / "fits" / "config.json")
    model = load_vismodel(rd.fit_dir(e))
    head = load_head(rd.epoch_dir(e))
    emb = vis.embedding(e)
    extent = vis.background_extent(e)
    grid = vis.background(e).shape[0]
    colors = class_colors(len(vis.classes))
    thr = float(cfg.get("boundary_threshold", 0.1))
    dev = torch.device("cpu")
    before, cls = decision_map(model, head, extent, grid, colors, thr, dev)
    after, cls2 = decision_map(model, head, extent, grid, colors, thr, dev, points=emb)
    assert (cls == cls2).all()
    far = data_proximity(emb, extent, grid, near=FADE_FAR, far=FADE_FAR + 1e-6, floor=0.0) == 0
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    m = vis.metrics.get(e, {})
    for tag, bg in (("before", before), ("after", after)):
        img = render(MapView(vis, e, bg), e, size=(opts.size, opts.size), extent=extent,
                     title=f"{opts.name}, epoch {e}, map {tag} fade  nn_rate {m.get('nn_rate@15', float('nan')):.3f}")
        img.save(out / f"{opts.name}-map-{tag}.png", optimize=True)
    changes = float((np.diff(cls, axis=1) != 0)[far[:, 1:] & far[:, :-1]].mean()) if far.any() else float("nan")
    print(f"{opts.run} epoch {e}: {far.mean():.1%} of the map lies farther than {FADE_FAR:.0%} of its side from any "
          f"sample; there {changes:.1%} of adjacent pixel pairs change class; colour contrast between adjacent "
          f"pixels there {contrast(before, far):.1f} before, {contrast(after, far):.1f} after (sum of |dRGB|)")
    print(f"wrote {out / (opts.name + '-map-before.png')} and {out / (opts.name + '-map-after.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
