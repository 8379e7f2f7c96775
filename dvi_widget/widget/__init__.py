"""The Jupyter widget: DVIWidget and what travels between Python and the JS bundle."""
from .widget import STATIC, DVIWidget

__all__ = ["DVIWidget", "STATIC"]
