"""Questions a researcher asks of a recorded run, answered from what the run already stores.

Pure computations over a fitted run (a :class:`dvi_widget.Visualization` or anything with the
same methods); no training, no widget. ``Visualization`` exposes them as thin methods
(``vis.dynamics()``, ``vis.neighbours()``, ``vis.probe()``) and ``dvi.compare`` puts two runs side
by side.

- :mod:`.dynamics`: per-sample training dynamics (forgetting events, data cartography, area
  under the margin, prediction flips) from the per-epoch predictions and probabilities;
- :mod:`.neighbours`: a sample's nearest neighbours in feature space (the fit's kNN graph) and
  whether the map keeps them near;
- :mod:`.probe`: what the map decodes at any 2-D location, and how far that is from the data;
- :mod:`.compare`: whether two runs hold the same samples, and how their epochs line up.
"""
from __future__ import annotations

from .compare import EpochAlignment, align_epochs, check_same_samples
from .dynamics import DYNAMICS_COLUMNS, dynamics, training_dynamics
from .neighbours import neighbours
from .probe import probe
from .table import Table

__all__ = ["DYNAMICS_COLUMNS", "EpochAlignment", "Table", "align_epochs", "check_same_samples", "dynamics",
           "neighbours", "probe", "training_dynamics"]
