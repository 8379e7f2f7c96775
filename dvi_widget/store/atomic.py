"""The one atomic writer: every file and every epoch folder dvi_widget writes goes through here.

- A file (run files, exports, pictures, reports, state files) is written to a
  temporary file in the destination's folder, flushed to disk, then moved into
  place with ``os.replace``: a failure (a full disk, a bad path, an exception
  while rendering, a kill) leaves either the old file or nothing, never a
  half-written one.
- An epoch folder is built under a temporary name (``.tmp-NNNNNN-*``), closed by
  a ``manifest.json`` listing every file and its size (written last: a folder
  without it is not complete), then renamed into place (:class:`AtomicFolder`).

Where renames are atomic, and where they are not
-------------------------------------------------
Local paths and ``file://`` URLs: everything above holds as written (``os.replace``
is atomic on one local file system).

Every other fsspec file system (``memory://``, ``s3://``, ``gcs://``, ...): there is no
atomic rename (an object store "renames" by copying and deleting, key by key), so the
writes never depend on one:

- a single file is written in one piece under a temporary key beside it
  (``.NAME.<id>.part``) and then moved to its key; a reader sees the old file or the
  new one (an object appears only when its upload completes), never half of one;
- an epoch folder is written key by key straight into ``epochs/NNNNNN/`` (or
  ``fits/NNNNNN/``), and its ``manifest.json``, listing every file with its size, is
  written LAST. The manifest is the epoch's marker: readers list only epochs that have
  one, and a fit counts an epoch as fitted only when every file the manifest lists has
  its listed size. A writer killed mid-epoch leaves an unmarked folder that readers
  ignore (and never delete); the next writer, under the run's lock, removes it and the
  epoch is captured or fitted again;
- replacing an epoch that is already finished (``replace=True``, a refit) first builds
  the new one completely, with its manifest, under ``.tmp-NNNNNN-<id>/``; then the old
  epoch's manifest is removed (readers stop listing it), the files are copied over and
  the manifest is written again. A writer killed in between leaves a complete staged
  copy that the next writer rolls forward. Not atomic here: a reader that had already
  listed that epoch and reads its files while they are being copied may get files of
  both versions (numpy's checks make that an error naming the file, or old and new
  arrays of the same shape); reopening the run reads the new epoch.
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
from .fs import RemotePath, run_path


def check_target(path) -> Path | RemotePath:
    """The destination as a Path (or RemotePath), or a DVIError saying why it cannot be written."""
    p = run_path(path) if isinstance(path, (str, RemotePath)) else Path(os.fspath(path)).expanduser()
    if isinstance(p, RemotePath):
        if p.local is None:
            if not p.direct and p.is_dir() and not p.is_file():   # (an epoch writer's own folder: no check)
                raise DVIError(f"cannot write {p}: it is a folder; give a file name")
            return p   # object stores have no folders to check: a key's "folder" need not exist
        p = p.local
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
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it to ``path``.

    On a file system without atomic rename (a :class:`RemotePath` that is not local) the
    bytes are written in one piece under a temporary key and then moved to their key (see
    the module's docstring); under an epoch writer's folder straight to their key.
    """
    p = check_target(path)
    if isinstance(p, RemotePath):
        return _write_remote(p, write)
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


def _write_remote(p: RemotePath, write: Callable[[IO[bytes]], None]) -> RemotePath:
    import io
    buf = io.BytesIO()
    write(buf)
    data = buf.getvalue()
    tmp = p if p.direct else p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        p.fs.pipe_file(tmp.path, data)
        if tmp is not p:
            p.fs.mv(tmp.path, p.path)
    except BaseException as e:
        if tmp is not p:
            with contextlib.suppress(Exception):
                tmp.unlink(missing_ok=True)
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


def folder_sizes(folder: Path | RemotePath) -> dict[str, int]:
    """{file name: size} of the files directly in ``folder`` (one listing on a remote file system)."""
    if isinstance(folder, RemotePath) and folder.local is None:
        entries = folder.fs.ls(folder.path, detail=True)
        return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
                for e in entries if e.get("type") == "file"}
    folder = folder.local if isinstance(folder, RemotePath) else folder
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def write_manifest(folder: Path | RemotePath) -> None:
    """List every file of ``folder`` with its size; written last, it marks the folder complete."""
    files = {k: v for k, v in sorted(folder_sizes(folder).items())
             if k != MANIFEST and not (k.startswith(".") and k.endswith(".part"))}
    write_json_atomic(folder / MANIFEST, {"files": files})


def commit_staged(staged: RemotePath, final: RemotePath) -> None:
    """Copy a complete staged epoch (``.tmp-*`` with its manifest) over ``final``, then mark it.

    For file systems without atomic rename: ``final``'s manifest goes first (readers stop
    listing the epoch), then its files, then the staged files are copied in (server-side on
    object stores) and the manifest is written again, last; the staged folder is removed.
    Run again after a kill at any point, it finishes the same job (the writer's recovery does).
    """
    import json as _json
    manifest = _json.loads((staged / MANIFEST).read_text())
    (final / MANIFEST).unlink(missing_ok=True)
    for old in list(final.iterdir()) if final.exists() else []:
        old.rmtree() if old.is_dir() else old.unlink(missing_ok=True)
    for name in manifest["files"]:
        final.fs.copy((staged / name).path, (final / name).path)
    final.fs.pipe_file((final / MANIFEST).path, (staged / MANIFEST).read_bytes())
    staged.rmtree()


class AtomicFolder:
    """Context manager that builds a folder under a temporary name and renames it into place.

    ``with AtomicFolder(final) as tmp:`` write files into ``tmp``; on a clean exit a
    manifest is written and the folder replaces ``final`` (an existing ``final`` is moved
    aside to ``.old-*`` first, since a rename cannot replace a non-empty folder; the run's
    writer restores it if a kill falls between the two renames). On an exception the
    temporary folder is removed. Only the run's writer (see ``store.lock``) uses this.

    On a file system without atomic rename (see the module's docstring) a new folder is
    written in place and marked by its manifest; a finished one being replaced is staged
    under ``.tmp-*`` and copied over by :func:`commit_staged`.
    """

    def __init__(self, final: Path | RemotePath):
        if isinstance(final, RemotePath) and final.local is not None:
            final = final.local   # file:// URL: the local (atomic rename) path
        self.remote = isinstance(final, RemotePath)
        self.final = final if self.remote else Path(final)
        self.tmp = self.final.with_name(f".tmp-{self.final.name}-{uuid.uuid4().hex[:8]}")
        self.staged = False

    def __enter__(self) -> Path | RemotePath:
        if self.remote:
            if (self.final / MANIFEST).exists():
                self.staged = True
                self.tmp = self.tmp.with_direct(True)
            else:   # a new epoch (or an unfinished earlier attempt, unmarked: never read): in place
                self.final.rmtree()
                self.tmp = self.final.with_direct(True)
            self.tmp.mkdir(parents=True, exist_ok=True)
            return self.tmp
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.remote:
            if exc_type is not None:
                with contextlib.suppress(Exception):
                    self.tmp.rmtree()   # unmarked either way: readers never saw it
                return
            write_manifest(self.tmp)
            if self.staged:
                commit_staged(self.tmp, self.final)
            return
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
