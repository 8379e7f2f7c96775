"""Why stab_spearman is what it is: a diagnosis of a fitted run's per-sample steps between epochs.

stab_spearman (``vis.summary()``, Vernier et al. 2020) is ONE Spearman correlation between each
sample's high-D step |h_t - h_{t-1}| and its 2-D step |y_t - y_{t-1}|, pooled over every pair of
consecutive epochs, on the metrics' query subset. This script takes it apart, for any fitted run:

- ``pooled`` (= vis.summary's figure) against ``within`` (the Spearman of each epoch pair alone)
  and ``pooled ranks`` (steps turned into ranks inside their pair before pooling): what pooling
  pairs whose 2-D steps have another overall size costs;
- where the high-D step comes from. ``affine R2``: the share of sum |dh|^2 that one affine map of
  the whole feature space (h_t ~ h_{t-1} A + b, least squares) explains; ``rho(dh, affine)`` and
  ``rho(dh, residual)``: how much of the RANK of |dh| the affine part's length, and what is left,
  carry; ``rho(dh, 1-J)``: how much the change of the sample's kNN set (1 - Jaccard of its k = 15
  nearest neighbours at t-1 and t) carries;
- ceilings. ``rho(dh, 1-J)`` is what a layout reaches that moves a sample exactly as much as its
  neighbourhood changed (and leaves the others still, as AlignedUMAP's idea does). ``rho(dh,
  nbr mean)``: the Spearman of |dh_i| with the mean |dh| of i's high-D neighbours (i excluded),
  the best a layout reaches whose samples move together with their neighbours (which is what
  keeping neighbourhoods asks);
- what the shown layout did: ``rho(dy, 1-J)``; the mean 2-D and high-D step per pair; the share of
  all 2-D movement made by the 5% of samples that moved most.
- ceilings of a motion of the whole map that keeps every 2-D neighbourhood, added on top of any
  layout (its moves then dominate the ranks as it grows). ``rho(dh, similarity)``: a similarity
  transform (rotation, scale, shift) moves each point by |a - 1| |y - z0|, so the best it can do is
  the Spearman of |dh| with the distance from some fixed point z0 of the previous map (searched on
  a 41 x 41 grid over twice the map's RMS radius). ``rho(dh, conformal)``: a conformal map
  z -> z + g(z), locally a similarity, moves each point by |g(z)| with log |g| harmonic; the best
  least-squares fit of log |dh| by Re of a degree-8 polynomial in the previous map's z, ranked
  against |dh|.

Usage (from the repository root)::

    python benchmarks/stability.py RUN [RUN ...]        # fitted run directories
    python benchmarks/stability.py RUN --json out.json

Figures are printed as a table per run; nothing is written unless ``--json`` is given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent


def rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def ranks01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1), ties averaged."""
    from scipy.stats import rankdata
    return (rankdata(x) - 0.5) / len(x)


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, |A & B| / |A | B| of two (N, k) index arrays."""
    inter = (a[:, :, None] == b[:, None, :]).any(2).sum(1)
    k = a.shape[1]
    return inter / (2 * k - inter)


def affine_split(h0: np.ndarray, h1: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares affine map h1 ~ [h0, 1] W: per-sample length of its move and of the residual, and R2."""
    x = np.concatenate([h0, np.ones((len(h0), 1), h0.dtype)], 1).astype(np.float64)
    w, *_ = np.linalg.lstsq(x, h1.astype(np.float64), rcond=None)
    pred = x @ w
    aff = np.linalg.norm(pred - h0, axis=1)
    res = np.linalg.norm(h1 - pred, axis=1)
    dh2 = (np.linalg.norm(h1 - h0, axis=1) ** 2).sum()
    return aff, res, float(1 - (res ** 2).sum() / max(dh2, 1e-30))


def similarity_ceiling(dh: np.ndarray, y: np.ndarray, grid: int = 41) -> float:
    """Best Spearman of |dh| with |y - z0| over fixed points z0 of a grid around the map (see docstring)."""
    c = y.mean(0)
    r = float(np.sqrt(((y - c) ** 2).sum(1).mean()))
    best = -1.0
    for gx in np.linspace(-2, 2, grid):
        for gy in np.linspace(-2, 2, grid):
            best = max(best, rho(dh, np.linalg.norm(y - (c + r * np.array([gx, gy])), axis=1)))
    return best


def conformal_ceiling(dh: np.ndarray, y: np.ndarray, degree: int = 8) -> float:
    """Spearman of |dh| with the least-squares harmonic fit Re P(z) of log |dh| (see docstring)."""
    z = y[:, 0] + 1j * y[:, 1]
    z = (z - z.mean()) / np.sqrt(np.mean(np.abs(z - z.mean()) ** 2))
    x = np.column_stack([np.ones(len(z))] + [f(z ** k) for k in range(1, degree + 1) for f in (np.real, np.imag)])
    w, *_ = np.linalg.lstsq(x, np.log(np.maximum(dh, 1e-30)), rcond=None)
    return rho(dh, x @ w)


def diagnose(run: Path) -> dict:
    """Every figure of the module docstring, per epoch pair and pooled, for one fitted run."""
    sys.path.insert(0, str(ROOT))
    from dvi_widget.engine.metrics import query_subset
    from dvi_widget.store.rundir import RunDir, load_npz

    rd = RunDir(run)
    epochs = rd.fitted_epochs()
    q = query_subset(rd.n)
    pairs, H, L, HR, LR, NJ = [], [], [], [], [], []
    prev = None
    for e in epochs:
        fit = load_npz(rd.fit_dir(e) / "fit.npz", ("embedding", "knn"))
        h = load_npz(rd.epoch_dir(e) / "features.npz", ("features",))["features"]
        cur = {"h": h, "y": fit["embedding"], "knn": fit["knn"]}
        if prev is not None:
            dh = np.linalg.norm(cur["h"] - prev["h"], axis=1)
            dy = np.linalg.norm(cur["y"] - prev["y"], axis=1)
            k = min(cur["knn"].shape[1], prev["knn"].shape[1])
            change = 1 - jaccard(cur["knn"][:, :k], prev["knn"][:, :k])
            aff, res, r2 = affine_split(prev["h"], cur["h"])
            nbr = dh[cur["knn"][:, :k]].mean(1)
            # the neighbourhood-coherent part of the high-D move and the part local to the sample
            dvec = cur["h"] - prev["h"]
            coh = dvec[cur["knn"][:, :k]].mean(1)
            loc = np.linalg.norm(dvec - coh, axis=1)
            dyq, dhq = dy[q], dh[q]
            top = np.sort(dyq)[::-1]
            pairs.append({
                "pair": f"{prev['e']}->{e}",
                "within": rho(dhq, dyq),
                "mean_dh": float(dhq.mean()), "mean_dy": float(dyq.mean()),
                "affine_R2": r2,
                "rho_dh_affine": rho(dhq, aff[q]), "rho_dh_residual": rho(dhq, res[q]),
                "rho_dh_change": rho(dhq, change[q]), "mean_change": float(change[q].mean()),
                "rho_dh_nbr_mean": rho(dhq, nbr[q]),
                "rho_dh_local": rho(dhq, loc[q]),
                "rho_dy_change": rho(dyq, change[q]),
                "rho_dh_similarity": similarity_ceiling(dhq, prev["y"][q]),
                "rho_dh_conformal": conformal_ceiling(dhq, prev["y"][q]),
                "top5_share_dy": float(top[: max(1, len(top) // 20)].sum() / max(top.sum(), 1e-30)),
            })
            H.append(dhq), L.append(dyq), HR.append(ranks01(dhq)), LR.append(ranks01(dyq)), NJ.append(change[q])
        prev = {**cur, "e": e}
    if not pairs:
        return {"run": str(run), "pairs": [], "error": "fewer than two fitted epochs"}
    h, l = np.concatenate(H), np.concatenate(L)
    pooled = {
        "pooled": rho(h, l),
        "pooled_ranks": rho(np.concatenate(HR), np.concatenate(LR)),
        "within_mean": float(np.mean([p["within"] for p in pairs])),
        "ceiling_change": rho(h, np.concatenate(NJ)),
        "rho_dy_change": rho(l, np.concatenate(NJ)),
    }
    means = {k: float(np.mean([p[k] for p in pairs])) for k in
             ("affine_R2", "rho_dh_affine", "rho_dh_residual", "rho_dh_change", "rho_dh_nbr_mean", "rho_dh_local",
              "top5_share_dy", "mean_change", "rho_dh_similarity", "rho_dh_conformal")}
    return {"run": str(run), "epochs": epochs, "pairs": pairs, "pooled": pooled, "pair_means": means}


COLS = [("pair", "pair", "{}"), ("within", "within", "{:.3f}"), ("mean |dh|", "mean_dh", "{:.3g}"),
        ("mean |dy|", "mean_dy", "{:.3g}"), ("affine R2", "affine_R2", "{:.3f}"),
        ("rho(dh, affine)", "rho_dh_affine", "{:.3f}"), ("rho(dh, residual)", "rho_dh_residual", "{:.3f}"),
        ("rho(dh, 1-J)", "rho_dh_change", "{:.3f}"), ("mean 1-J", "mean_change", "{:.3f}"),
        ("rho(dh, nbr mean)", "rho_dh_nbr_mean", "{:.3f}"), ("rho(dh, local)", "rho_dh_local", "{:.3f}"),
        ("rho(dy, 1-J)", "rho_dy_change", "{:.3f}"), ("top 5% share of dy", "top5_share_dy", "{:.2f}"),
        ("rho(dh, similarity)", "rho_dh_similarity", "{:.3f}"), ("rho(dh, conformal)", "rho_dh_conformal", "{:.3f}")]


def markdown(d: dict) -> str:
    if not d["pairs"]:
        return f"{d['run']}: {d['error']}"
    p = d["pooled"]
    lines = [f"#### {d['run']}", "",
             f"stab_spearman pooled {p['pooled']:.3f} · pooled after ranking inside each pair {p['pooled_ranks']:.3f} · "
             f"mean within-pair {p['within_mean']:.3f} · ceiling of a layout moving samples by their neighbourhood "
             f"change, rho(dh, 1-J) pooled {p['ceiling_change']:.3f} · this layout's rho(dy, 1-J) pooled "
             f"{p['rho_dy_change']:.3f}", "",
             "| " + " | ".join(c[0] for c in COLS) + " |", "|" + "---|" * len(COLS)]
    for row in d["pairs"]:
        lines.append("| " + " | ".join(f.format(row[k]) for _, k, f in COLS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="fitted run directories")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--md", default=None, help="also write the tables here, under the command and load average")
    opts = ap.parse_args(argv)
    import os
    load = [round(x, 2) for x in os.getloadavg()]
    out = [diagnose(Path(r)) for r in opts.runs]
    text = "\n\n".join(markdown(d) for d in out)
    print(text)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"load": load, "runs": out}, indent=1))
    if opts.md:
        cmd = "python benchmarks/stability.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(opts.md).write_text(f"Command: `{cmd}`  \nLoad average (1/5/15 min): {load}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
