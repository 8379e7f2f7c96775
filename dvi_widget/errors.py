"""Exceptions that name the problem, so a user can fix the input rather than read a traceback."""
from __future__ import annotations


class DVIError(ValueError):
    """Bad input to dvi_widget: wrong shapes, NaNs, one class, an unknown epoch, ..."""


class RunFileError(DVIError):
    """A run directory file is missing, damaged or does not match the run."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        super().__init__(f"{problem}: {self.path}")


def unknown_epoch(epoch, valid) -> DVIError:
    valid = list(valid)
    shown = valid if len(valid) <= 30 else valid[:15] + ["..."] + valid[-5:]
    return DVIError(f"unknown epoch {epoch!r}; valid epochs: {shown if valid else 'none recorded yet'}")
