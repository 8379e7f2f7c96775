"""The one atomic writer: every file and every epoch folder dvi_widget writes goes through here.

- A file (run files, exports, pictures, reports, state files) is written to a
  temporary file in the destination's folder, flushed to disk, then moved into
  place with ``os.replace``: a failure (a full disk, a bad path, an exception
  while rendering, a kill) leaves either the old file or nothing, never a
  half-written one.
- An epoch folder is built under a temporary name (``.tmp-NNNNNN-*``), closed by
  a ``manifest.json`` listing every file and its size (written last: a folder
  without it is not complete), then renamed into place (:class:`AtomicFolder`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, IO

import numpy as np

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



def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True))


def write_npy_atomic(path: str | os.PathLike, arr: np.ndarray) -> Path:
    return write_atomic(path, lambda f: np.save(f, np.asarray(arr), allow_pickle=False))


def write_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """A ``.npz`` of plain arrays (stored, not compressed: a member's size is its array's size)."""
    for name, a in arrays.items():
        if np.asarray(a).dtype.hasobject:
            raise DVIError(f"cannot store {name!r} in {path}: it holds Python objects")
    return write_atomic(path, lambda f: np.savez(f, **arrays))


MANIFEST = "manifest.json"


def write_manifest(folder: Path) -> None:
    """List every file of ``folder`` with its size; written last, it marks the folder complete."""
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    write_json_atomic(folder / MANIFEST, {"files": files})


class AtomicFolder:
    """Context manager that builds a folder under a temporary name and renames it into place.

    ``with AtomicFolder(final) as tmp:`` write files into ``tmp``; on a clean exit a
    manifest is written and the folder replaces ``final`` (an existing ``final`` is moved
    aside to ``.old-*`` first, since a rename cannot replace a non-empty folder; the run's
    writer restores it if a kill falls between the two renames). On an exception the
    temporary folder is removed. Only the run's writer (see ``store.lock``) uses this.
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.tmp = self.final.with_name(f".tmp-{self.final.name}-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> Path:
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        write_manifest(self.tmp)
        if self.final.exists():
            old = self.final.with_name(f".old-{self.final.name}-{uuid.uuid4().hex[:8]}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)
