"""Two runs side by side: are they runs of the same samples, and how do their epochs line up?

Comparing two runs point by point (two models, two training strategies, clean against noisy
labels) only makes sense when sample i is the same sample in both. The runs' sizes and label
hashes (a hash of the labels in order) are checked: runs with other samples, or the same
samples in another order, are refused. Runs with noisy against clean labels differ in their
labels by design, so ``same_labels=False`` lets those through when N matches (the user vouches
for the order).

Epochs line up by epoch number, never by position: epoch 7 of one run is shown with epoch 7
of the other; an epoch that only one run has is shown with the other's nearest epoch, and
the alignment says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DVIError
from ..store.rundir import label_hash


def _describe(vis, name: str) -> str:
    return f"{name} ({getattr(vis, 'path', '?')}): N={vis.n}, label hash {label_hash(np.asarray(vis.labels))}"


def check_same_samples(vis_a, vis_b, *, same_labels: bool = True) -> None:
    """Raise a DVIError naming N and the label hash of each run when they hold different samples."""
    if vis_a.n != vis_b.n:
        raise DVIError(f"these runs hold different samples, so they cannot be compared point by point: "
                       f"{_describe(vis_a, 'run A')}; {_describe(vis_b, 'run B')}")
    if same_labels and label_hash(np.asarray(vis_a.labels)) != label_hash(np.asarray(vis_b.labels)):
        differ = int(np.sum(np.asarray(vis_a.labels) != np.asarray(vis_b.labels)))
        raise DVIError(f"these runs hold different labels ({differ} of {vis_a.n} samples differ), so they are "
                       f"not the same samples in the same order: {_describe(vis_a, 'run A')}; "
                       f"{_describe(vis_b, 'run B')}. If they are the same samples with other labels "
                       f"(clean against noisy), pass same_labels=False")
    if len(vis_a.classes) != len(vis_b.classes):
        raise DVIError(f"these runs have different classes: run A {list(vis_a.classes)}, run B {list(vis_b.classes)}")


@dataclass
class EpochAlignment:
    """How the epoch numbers of runs A and B line up (by number)."""

    a: list[int]
    b: list[int]
    common: list[int] = field(init=False)
    only_a: list[int] = field(init=False)
    only_b: list[int] = field(init=False)

    def __post_init__(self):
        self.a, self.b = sorted(int(e) for e in self.a), sorted(int(e) for e in self.b)
        sa, sb = set(self.a), set(self.b)
        self.common = sorted(sa & sb)
        self.only_a = sorted(sa - sb)
        self.only_b = sorted(sb - sa)

    def partner(self, epoch: int, side: str = "a") -> tuple[int | None, bool]:
        """The other run's epoch to show with ``epoch`` of run ``side``: (epoch, exact).

        The same number when the other run has it (exact=True), else its nearest epoch number
        (the earlier on a tie; exact=False); None when the other run has no epochs.
        """
        other = self.b if side == "a" else self.a
        if not other:
            return None, False
        if epoch in other:
            return int(epoch), True
        arr = np.asarray(other)
        best = int(arr[np.argmin(np.abs(arr - epoch))])
        return best, False

    def note(self) -> str:
        """One line for the user: which epochs only one run has."""
        parts = []
        if self.only_a:
            parts.append(f"epochs only in run A: {_short(self.only_a)}")
        if self.only_b:
            parts.append(f"epochs only in run B: {_short(self.only_b)}")
        if not parts:
            return f"both runs have epochs {_short(self.common)}"
        return "; ".join(parts) + " (shown with the other run's nearest epoch)"


def _short(epochs: list[int]) -> str:
    return str(epochs if len(epochs) <= 12 else epochs[:8] + ["..."] + epochs[-3:])


def align_epochs(vis_a, vis_b) -> EpochAlignment:
    """The :class:`EpochAlignment` of two runs' fitted epochs."""
    return EpochAlignment(list(vis_a.epochs), list(vis_b.epochs))
