"""Atomic file writes for exports, pictures, reports and state files.

Everything is written to a temporary file in the destination's folder and then
moved into place with ``os.replace``: a failure (a full disk, a bad path, an
exception while rendering) leaves either the old file or nothing, never a
half-written one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

from ..errors import DVIError


def check_target(path: str | os.PathLike) -> Path:
    """The destination as a Path, or a DVIError saying why it cannot be written."""
    p = Path(os.fspath(path)).expanduser()
    if p.exists() and p.is_dir():
        raise DVIError(f"cannot write {p}: it is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise DVIError(f"cannot write {p}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise DVIError(f"cannot write {p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DVIError(f"cannot write {p}: no permission to write in {parent}")
    return p


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it to ``path``."""
    p = check_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    except OSError as e:
        raise DVIError(f"cannot write {p}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a picture or page is meant to be shared
        os.replace(tmp, p)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise DVIError(f"cannot write {p}: {e.strerror or e}") from e
        raise
    return p


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))

