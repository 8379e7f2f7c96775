"""Per-sample training dynamics from the predictions and probabilities every capture stores.

No extra training and no extra recording: each statistic is a pass over the epochs' stored
outputs (and, for the area under the margin, the stored features and head, when present).

Statistics (one value per sample, over the epochs used, in ascending epoch order):

``forgetting_events``
    Toneva et al. 2019, "An Empirical Study of Example Forgetting": the number of times a
    sample goes from correctly classified at one recorded epoch to misclassified at the next.
``first_learned``
    The first epoch number at which the prediction equals the label (NaN if never).
``never_learned``
    True when the prediction never equals the label (Toneva's samples that are "never learned"
    and so count as forgotten without end).
``confidence``, ``variability``, ``correctness``
    Swayamdipta et al. 2020, "Dataset Cartography": the mean over epochs of the probability
    the classifier gives to the sample's label, its standard deviation over epochs
    (population std, ``ddof=0``, as their code), and the share of epochs classified correctly.
``aum``
    Pleiss et al. 2020, "Identifying Mislabeled Data using the Area Under the Margin Ranking":
    per epoch the margin = the label's logit minus the largest other logit, averaged over the
    epochs. Negative: the network keeps preferring another class (a likely mislabel). Computed
    from logits = head(features) when every epoch's features and head are stored (they are
    exactly what the capture produced its predictions from), else from the probabilities;
    ``attrs["aum_from"]`` says which.
``flips``
    How many times the predicted class changes between consecutive recorded epochs.

Recorded epochs stand in for the training epochs of the papers; a run captured every k epochs
sees fewer forgetting events than happened (the papers count per mini-batch visit, Toneva et
al., or per epoch, Swayamdipta et al. and Pleiss et al.).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from ..errors import DVIError, RunFileError, unknown_epoch
from ..progress import track
from .table import make_table

#: The numeric statistics, with what each means (the widget shows these as colour choices).
DYNAMICS_COLUMNS: dict[str, str] = {
    "aum": "area under the margin: mean of (label's score - largest other); low = likely mislabelled",
    "confidence": "mean probability of the label over epochs (cartography)",
    "variability": "std over epochs of the probability of the label (cartography)",
    "correctness": "share of epochs the prediction equals the label (cartography)",
    "forgetting_events": "times a sample went from correct to wrong between consecutive epochs",
    "first_learned": "first epoch at which the prediction equals the label (NaN: never)",
    "never_learned": "1 if the prediction never equals the label",
    "flips": "times the predicted class changed between consecutive epochs",
}

MARGINS = ("auto", "logits", "probabilities")


def margins(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) label's score minus the largest other class's score, for (N, C) logits or probabilities."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(labels))
    own = scores[rows, labels]
    other = scores.copy()
    other[rows, labels] = -np.inf
    return own - other.max(axis=1)


def training_dynamics(epochs: Iterable[int], labels: np.ndarray, outputs: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
                      ) -> dict[str, np.ndarray]:
    """The statistics from per-epoch arrays, streamed one epoch at a time.

    ``outputs`` yields, per epoch in ``epochs`` order, ``(predictions (N,), probabilities (N, C),
    scores (N, C) or None)``; the margin uses ``scores`` when given, else the probabilities.
    Returns a dict of (N,) arrays, keys as :data:`DYNAMICS_COLUMNS`.
    """
    epochs = [int(e) for e in epochs]
    if not epochs:
        raise DVIError("training dynamics need at least one epoch")
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    rows = np.arange(n)
    sum_p = np.zeros(n)
    sum_p2 = np.zeros(n)
    sum_margin = np.zeros(n)
    n_correct = np.zeros(n, dtype=np.int64)
    forgetting = np.zeros(n, dtype=np.int64)
    flips = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.nan)
    prev_pred = prev_correct = None
    count = 0
    for epoch, (pred, prob, scores) in zip(epochs, outputs):
        pred = np.asarray(pred, dtype=np.int64)
        prob = np.asarray(prob)
        if pred.shape != (n,) or prob.ndim != 2 or prob.shape[0] != n:
            raise DVIError(f"epoch {epoch}: predictions {pred.shape} / probabilities {prob.shape} "
                           f"do not match N={n} samples")
        correct = pred == labels
        p = prob[rows, labels].astype(np.float64)
        sum_p += p
        sum_p2 += p * p
        sum_margin += margins(scores if scores is not None else prob, labels)
        n_correct += correct
        first[np.isnan(first) & correct] = epoch
        if prev_pred is not None:
            forgetting += prev_correct & ~correct
            flips += pred != prev_pred
        prev_pred, prev_correct = pred, correct
        count += 1
    if count != len(epochs):
        raise DVIError(f"got outputs for {count} epochs, expected {len(epochs)}")
    mean_p = sum_p / count
    return {
        "aum": sum_margin / count,
        "confidence": mean_p,
        "variability": np.sqrt(np.clip(sum_p2 / count - mean_p * mean_p, 0.0, None)),
        "correctness": n_correct / count,
        "forgetting_events": forgetting,
        "first_learned": first,
        "never_learned": n_correct == 0,
        "flips": flips,
    }


def _epochs_upto(vis, upto, epochs) -> list[int]:
    valid = [int(e) for e in vis.epochs]
    if epochs is not None:
        chosen = []
        for e in epochs:
            if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or int(e) not in valid:
                raise unknown_epoch(e, valid)
            chosen.append(int(e))
        out = sorted(set(chosen))
    else:
        out = valid
    if upto is not None:
        if isinstance(upto, bool) or not isinstance(upto, (int, np.integer)) or int(upto) not in valid:
            raise unknown_epoch(upto, valid)
        out = [e for e in out if e <= int(upto)]
    if not out:
        raise DVIError(f"no fitted epochs to compute training dynamics from (epochs: {valid})")
    return out


def _logits(vis, epoch: int) -> np.ndarray:
    head = vis.head(epoch)
    h = torch.as_tensor(np.asarray(vis.features(epoch), dtype=np.float32))
    with torch.no_grad():
        return torch.cat([head(h[s:s + 16384]) for s in range(0, len(h), 16384)]).double().numpy()


def _features_stored(vis, epoch: int) -> bool:
    run = getattr(vis, "run", None)
    if run is not None:
        return (run.epoch_dir(epoch) / "features.npz").exists()
    try:
        vis.features(epoch)
    except (RunFileError, AttributeError):
        return False
    return True


def dynamics(vis, *, upto: int | None = None, epochs: Iterable[int] | None = None, margin: str = "auto",
             pandas: bool | None = None, progress: bool = True) -> Any:
    """Per-sample training dynamics of a fitted run (see the module docstring for each column).

    Parameters
    ----------
    vis:
        A :class:`dvi_widget.Visualization`.
    upto:
        Use only epochs up to this epoch number ("the epochs so far"); default all fitted epochs.
    epochs:
        Use only these epoch numbers (default all fitted epochs).
    margin:
        ``"auto"`` (logits when every epoch's features are stored, else probabilities),
        ``"logits"`` (an error when features are missing, as in a saved Visualization) or
        ``"probabilities"``.
    pandas:
        ``None``: a DataFrame when pandas is installed, else a :class:`~dvi_widget.analysis.table.Table`
        (a dict of arrays); ``False`` forces the dict.
    progress:
        Show progress over the epochs (dvi_widget.progress).

    Returns a table indexed by sample (column ``sample`` in the dict form) with ``label``,
    ``split`` and the columns of :data:`DYNAMICS_COLUMNS`; ``attrs`` holds ``epochs`` (the epoch
    numbers used) and ``aum_from`` (``"logits"`` or ``"probabilities"``).
    """
    if margin not in MARGINS:
        raise DVIError(f"margin must be one of {MARGINS}, got {margin!r}")
    used = _epochs_upto(vis, upto, epochs)
    if margin == "auto":
        margin = "logits" if all(_features_stored(vis, e) for e in used) else "probabilities"
    elif margin == "logits":
        missing = [e for e in used if not _features_stored(vis, e)]
        if missing:
            raise DVIError(f"margin='logits' needs the stored features of epochs {missing[:10]} (a saved "
                           f"Visualization drops them); use margin='probabilities'")
    labels = np.asarray(vis.labels, dtype=np.int64)

    def outputs():
        for e in track(used, "training dynamics", unit="epoch", enabled=progress and len(used) > 1):
            scores = _logits(vis, e) if margin == "logits" else None
            yield vis.predictions(e), vis.probabilities(e), scores

    stats = training_dynamics(used, labels, outputs())
    columns = {"label": labels, "split": np.asarray(vis.split).astype(str)} | stats
    return make_table(columns, index=np.arange(len(labels)), attrs={"epochs": used, "aum_from": margin},
                      use_pandas=pandas)
