"""The coherent displacement field experiment (benchmarks/README.md, "Engine speed, third round"): not in the engine.

stab_spearman asks each sample's 2-D step to rank as its feature step |dh|, and |dh| is smooth over
the shown 2-D neighbourhoods. This refits a recorded benchmark run with one extra step after each
warm layout's alignment: each 2-D move d_i is split into s_i, its mean over the k nearest 2-D
neighbours (``--rounds`` times), and the rest r_i = d_i - s_i; s_i keeps its direction and gets
the length c times |dh| averaged the same way (c fixed at the first warm epoch so that the mean move
is ``--size`` times the layout's RMS radius, as the stable preset fixes it); r_i is kept; then
``--repair`` passes at ``--repair-rate`` of the warm rate mend local order. It prints what
``refit_options.py`` prints (per epoch: nn_rate against umap-learn's, ppr, map_consistency; then
stab_spearman), with the same arguments:

    python benchmarks/coherent_field.py W/digits-default OUT/engine.json --k 150 --size 1.0 --repair 20

It patches two engine functions for the duration of the process (``fitting.fit_layout``, to see
the epoch's inputs, and ``projection.align_similarity``, to add the field after it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def coherent_field(prev: torch.Tensor, pos: torch.Tensor, high_step: torch.Tensor, scale: float,
                   k: int, rounds: int) -> torch.Tensor:
    """Each move's 2-D-neighbourhood mean rescaled to scale * (neighbourhood-mean |dh|), the rest kept."""
    from dvi_widget.engine.knn import tree_knn
    d = pos - prev
    nb, _ = tree_knn(pos, k)
    group = torch.cat([torch.arange(len(d))[:, None], nb], 1)
    s, m = d, high_step.float()
    for _ in range(rounds):
        s, m = s[group].mean(1), m[group].mean(1)
    length = s.norm(dim=1).clamp_min(1e-12)
    return prev + s / length[:, None] * (scale * m)[:, None] + (d - s)


def install(k: int, rounds: int, size: float, repair: int, repair_rate: float) -> None:
    from dvi_widget.engine import fitting, projection
    from dvi_widget.engine.config import umap_ab
    from dvi_widget.engine.layout import optimize_layout
    ctx: dict = {}
    original_fit, original_align = fitting.fit_layout, projection.align_similarity

    def fit_layout(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, prev_fit, prev_knn, prev_h, progress):
        ctx.update(H=H, cx=cx, cfg=cfg, gen=gen, prev_h=prev_h)
        return original_fit(H, B, nodes, head, cx, cfg, device, gen, epoch, prev_model, prev_fit, prev_knn,
                            prev_h, progress)

    def align_similarity(pos, prev, weight):
        pos = original_align(pos, prev, weight)
        H, cx, cfg, gen, prev_h = ctx["H"], ctx["cx"], ctx["cfg"], ctx["gen"], ctx["prev_h"]
        high = (H - prev_h).norm(dim=1)
        if "scale" not in ctx:        # one c for the run, from the first warm epoch
            radius = float((prev - prev.mean(0)).pow(2).sum(1).mean().sqrt())
            ctx["scale"] = size * radius / max(float(high.mean()), 1e-12)
        pos = coherent_field(prev, pos, high, ctx["scale"], k, rounds)
        if repair:
            n = len(H)
            own = (cx.edges < n).all(1)
            a, b = umap_ab(cfg.spread, cfg.min_dist)
            rate = cfg.warm_rate_floor + (1 - cfg.warm_rate_floor) * (1 - weight)
            pos = optimize_layout(pos, cx.edges[own], cx.weights[own], repair, a, b, generator=gen,
                                  negative_sample_rate=cfg.negative_sample_rate,
                                  lr=repair_rate * cfg.layout_lr_warm, point_rate=rate,
                                  sequential=cfg.layout_updates == "sequential")
        return pos

    fitting.fit_layout = fit_layout
    projection.align_similarity = align_similarity


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("umap")
    p.add_argument("--k", type=int, default=150, help="2-D neighbours the moves are averaged over")
    p.add_argument("--rounds", type=int, default=2, help="times the averaging is repeated")
    p.add_argument("--size", type=float, default=1.0, help="first warm epoch's mean move / RMS radius")
    p.add_argument("--repair", type=int, default=20, help="mending passes after the field")
    p.add_argument("--repair-rate", type=float, default=0.2, help="their rate, as a share of the warm rate")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    install(a.k, a.rounds, a.size, a.repair, a.repair_rate)
    sys.path.insert(0, str(Path(__file__).parent))
    import refit_options
    sys.argv = [sys.argv[0], a.run, a.umap, "{}", "--threads", str(a.threads)]
    refit_options.main()


if __name__ == "__main__":
    main()
