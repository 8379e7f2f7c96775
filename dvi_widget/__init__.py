"""dvi_widget: watch a deep classifier train, DeepVisualInsight (DVI) in a Jupyter widget."""
from __future__ import annotations

from .engine.config import FitConfig
from .errors import DVIError, RunFileError
from .engine.executors import RayExecutor
from .engine.fitting import fit
from .record.recorder import Recorder
from .results import Visualization

__version__ = "0.1.0"


def __getattr__(name: str):
    # the widget pulls in anywidget/ipywidgets; load it only when asked for
    if name == "DVIWidget":
        from .widget.widget import DVIWidget
        return DVIWidget
    if name == "compare":
        from .widget.compare import compare
        return compare
    raise AttributeError(f"module 'dvi_widget' has no attribute {name!r}")


__all__ = ["Recorder", "fit", "RayExecutor", "Visualization", "DVIWidget", "compare", "FitConfig", "DVIError", "RunFileError"]
