"""The training-dynamics table as the page receives it (PROTOCOL.md, trait ``dynamics``).

``vis.dynamics()`` over every fitted epoch, restricted to the displayed samples, packed as
float32 column after column (K, n) with NaN where a statistic has no value. Sent once (and again
when a live widget gains epochs), so colouring, filtering and the cartography view work while
the kernel is busy and in the offline export.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..analysis.dynamics import DYNAMICS_COLUMNS
from ..errors import DVIError

log = logging.getLogger(__name__)

#: Above this many bytes of stored features, the widget's AUM uses probabilities (no feature
#: reads): a live widget recomputes the table whenever an epoch arrives. ``vis.dynamics()``
#: itself always prefers logits; the colour bar says which the widget used.
LOGIT_BUDGET_BYTES = 2 * 1024 ** 3


def _features_bytes(vis: Any) -> int:
    run = getattr(vis, "run", None)
    if run is None:
        return 0
    total = 0
    for e in vis.epochs:
        try:
            total += (run.epoch_dir(e) / "features.npz").stat().st_size
        except OSError:
            pass
    return total


def dynamics_payload(vis: Any, shown: np.ndarray) -> tuple[bytes, dict]:
    """(float32 bytes of shape (K, n), info) for the displayed samples ``shown`` (global indices).

    A run that cannot give dynamics (no epochs, or a Visualization-like object without
    ``dynamics()``) sends ``b""`` and ``{}``; an error is logged and named in ``info["error"]``
    rather than breaking the widget.
    """
    if not hasattr(vis, "dynamics") or not list(vis.epochs):
        return b"", {}
    margin = "probabilities" if _features_bytes(vis) > LOGIT_BUDGET_BYTES else "auto"
    try:
        table = vis.dynamics(margin=margin, pandas=False, progress=False)
    except (DVIError, OSError, ValueError) as err:
        log.warning("training dynamics unavailable: %s", err)
        return b"", {"error": str(err)}
    columns = list(DYNAMICS_COLUMNS)
    arr = np.stack([np.asarray(table[c], dtype=np.float32)[shown] for c in columns])
    info = {"columns": columns, "descriptions": dict(DYNAMICS_COLUMNS), "aum_from": table.attrs["aum_from"],
            "epochs": [int(e) for e in table.attrs["epochs"]]}
    return np.ascontiguousarray(arr, dtype="<f4").tobytes(), info
