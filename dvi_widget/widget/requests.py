"""Questions the page asks the kernel: a sample's neighbours, a probe of the map.

The page sends ``{"type": "dvi_request", "request": "neighbours" | "probe", "id": int, ...}``
as a custom message; the kernel answers ``{"type": "dvi_reply", "id": int, "reply": {...}}`` or
``{"type": "dvi_reply", "id": int, "error": "..."}``. Answers are a few numbers per neighbour or
class (JSON is fine at that size). The page never waits on them (js/src/probe.js): while a cell
keeps the kernel busy it says so. See PROTOCOL.md, "Requests".
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

NEIGHBOURS_K = 15
PROBE_K = 6


def _num(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def neighbours_reply(vis: Any, epoch: int, index: int, k: int = NEIGHBOURS_K) -> dict:
    """The inspector's neighbour list of sample ``index`` (global) at ``epoch``."""
    table = vis.neighbours(int(epoch), int(index), k=int(k), pandas=False)
    rows = [{"sample": int(s), "label": int(lab), "prediction": int(p), "distance": _num(d), "distance_2d": _num(d2),
             "in_2d": bool(kept)}
            for s, lab, p, d, d2, kept in zip(table["sample"], table["label"], table["prediction"], table["distance"],
                                              table["distance_2d"], table["in_2d"])]
    return {"index": int(index), "epoch": int(epoch), "k": len(rows), "rate": _num(table.attrs["rate"]),
            "source": table.attrs["source"], "rows": rows}


def probe_reply(vis: Any, epoch: int, x: float, y: float, k: int = PROBE_K) -> dict:
    """What the map decodes at (x, y) at ``epoch`` (see ``Visualization.probe``)."""
    r = vis.probe(int(epoch), (float(x), float(y)), k=int(k))
    return {"epoch": int(epoch), "x": float(x), "y": float(y),
            "probabilities": [float(p) for p in np.asarray(r["probabilities"], dtype=np.float64)],
            "prediction": int(r["prediction"]), "nearest": [int(i) for i in r["nearest"]],
            "nearest_distance": [_num(d) for d in r["nearest_distance"]], "distance": _num(r["distance"]),
            "distance_percentile": _num(r["distance_percentile"]), "extrapolating": bool(r["extrapolating"]),
            "neighbours_in": r["neighbours_in"]}


def handle(widget: Any, content: Any, buffers: Any = None) -> None:
    """``DVIWidget.on_msg`` handler: answer one request from the page."""
    if not isinstance(content, dict) or content.get("type") != "dvi_request":
        return
    rid = content.get("id")
    try:
        kind = content.get("request")
        if kind == "neighbours":
            reply = neighbours_reply(widget.vis, content["epoch"], content["index"], content.get("k", NEIGHBOURS_K))
        elif kind == "probe":
            reply = probe_reply(widget.vis, content["epoch"], content["x"], content["y"], content.get("k", PROBE_K))
        else:
            raise ValueError(f"unknown request {kind!r}")
        widget.send({"type": "dvi_reply", "id": rid, "reply": reply})
    except Exception as err:  # the page shows the message; the kernel keeps running
        widget.send({"type": "dvi_reply", "id": rid, "error": f"{type(err).__name__}: {err}"})
