"""Tables of per-sample results: a pandas DataFrame when pandas is installed, else a dict of arrays.

pandas is optional (the core package does not depend on it). Either way the columns are numpy
arrays of equal length and ``.attrs`` carries the notes that belong to the whole table (for
example which margin the area under the margin was computed from).
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Table(dict):
    """A dict of equal-length numpy arrays with an ``attrs`` dict: the table without pandas."""

    def __init__(self, columns: dict[str, np.ndarray], attrs: dict[str, Any] | None = None):
        super().__init__(columns)
        self.attrs: dict[str, Any] = dict(attrs or {})

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.values()))) if dict.__len__(self) else 0

    def __len__(self) -> int:
        """The number of rows, as ``len(DataFrame)`` gives (``len(table.keys())`` counts columns)."""
        return self.n_rows

    def __repr__(self) -> str:
        return f"Table({self.n_rows} rows: {', '.join(self.keys())}; {self.attrs})"


def make_table(columns: dict[str, np.ndarray], index: np.ndarray | None = None, index_name: str = "sample",
               attrs: dict[str, Any] | None = None, use_pandas: bool | None = None):
    """A DataFrame (``use_pandas=None``: when pandas imports) or a :class:`Table` of the columns.

    ``index`` becomes the DataFrame's index (named ``index_name``); in a :class:`Table` it is the
    first column.
    """
    if use_pandas is not False:
        try:
            import pandas as pd
        except ImportError:
            if use_pandas:
                raise
        else:
            df = pd.DataFrame(columns, index=pd.Index(index, name=index_name) if index is not None else None)
            df.attrs.update(attrs or {})
            return df
    cols = ({index_name: np.asarray(index)} if index is not None else {}) | {k: np.asarray(v) for k, v in columns.items()}
    return Table(cols, attrs)
