"""Where a run lives: a local folder, or any file system fsspec can reach (``memory://``, ``s3://``, ...).

A run path is either a local path (``str`` / ``os.PathLike``), kept as a :class:`pathlib.Path`
on today's code path (atomic ``os.replace``), or an fsspec URL such as ``memory://runs/a``,
``file:///data/runs/a``, ``s3://bucket/runs/a`` or ``gcs://bucket/runs/a``, turned into a
:class:`RemotePath`. Object stores need their fsspec driver installed (``s3fs``, ``gcsfs``,
``adlfs``...); no code of ours is specific to any of them.

:class:`RemotePath` offers the few pathlib methods the run directory code uses (``/``,
``name``, ``parent``, ``exists``, ``is_file``, ``is_dir``, ``iterdir``, ``stat().st_size``,
``open``, ``read_text``, ``mkdir``, ``unlink``) on top of an fsspec file system. It
deliberately has no ``rename``/``replace`` and no ``__fspath__``: a rename on an object store
is a copy and a delete, not atomic, and the writers in ``store.atomic`` say how they stay
safe without one (temporary keys, then a marker file per finished epoch). Anything that
would hand a URL to ``os``/``open()`` fails loudly instead of creating a local folder named
``memory:``.

Where a rename is atomic: local paths and ``file://`` URLs (fsspec's local file system): the
writers then use ``os.replace`` on the underlying local path (:attr:`RemotePath.local`).
Everywhere else (``memory://``, object stores, and every other fsspec file system) the writes
never rely on a rename: see ``store.atomic``.
"""
from __future__ import annotations

import fnmatch
import io
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from ..errors import DVIError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: Any) -> bool:
    """True when ``path`` is a string naming an fsspec URL (``scheme://...`` or a chained ``a::b://``)."""
    return isinstance(path, str) and (bool(_URL.match(path)) or "::" in path)


class RemotePath:
    """A path on an fsspec file system, with the subset of pathlib's API a run directory needs.

    ``str(p)`` is the URL (``memory://runs/a/meta.json``), used in every error message.
    """

    __slots__ = ("fs", "path", "direct")

    def __init__(self, fs, path: str, direct: bool = False):
        self.fs = fs
        self.path = path.rstrip("/") or "/"
        #: Set on the folders an epoch writer hands out: files under them may be written
        #: straight to their keys (the epoch's manifest, written last, is their marker).
        self.direct = direct

    # ---- identity ----------------------------------------------------------
    @property
    def protocol(self) -> str:
        p = self.fs.protocol
        return p[0] if isinstance(p, (tuple, list)) else p

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and other.fs is self.fs and other.path == self.path

    def __lt__(self, other: "RemotePath") -> bool:
        return self.path < other.path

    def __hash__(self) -> int:
        return hash((id(self.fs), self.path))

    def __reduce__(self):   # Ray / multiprocessing: rebuilt from the URL (fsspec caches file systems)
        return (_from_url, (str(self), self.direct))

    @property
    def local(self) -> Path | None:
        """The local path when this is fsspec's local file system (where ``os.replace`` is atomic).

        Exactly that class: a subclass (or a wrapper such as ``dir::``) may change what a
        rename does, so it is written as a file system without atomic rename.
        """
        from fsspec.implementations.local import LocalFileSystem
        return Path(self.path) if type(self.fs) is LocalFileSystem else None

    # ---- path algebra ------------------------------------------------------
    def __truediv__(self, other: str | os.PathLike) -> "RemotePath":
        other = os.fspath(other).strip("/")
        base = "" if self.path == "/" else self.path
        return RemotePath(self.fs, f"{base}/{other}", self.direct)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def parent(self) -> "RemotePath":
        head = self.path.rsplit("/", 1)[0] if "/" in self.path.strip("/") else ("/" if self.path.startswith("/") else "")
        return RemotePath(self.fs, head or "/", self.direct)

    def with_name(self, name: str) -> "RemotePath":
        return self.parent / name

    def expanduser(self) -> "RemotePath":
        return self

    def resolve(self) -> "RemotePath":
        return self

    def with_direct(self, direct: bool) -> "RemotePath":
        return RemotePath(self.fs, self.path, direct)

    # ---- queries -------------------------------------------------------------
    def _info(self) -> dict | None:
        try:
            return self.fs.info(self.path)
        except (FileNotFoundError, OSError):
            return None

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def is_symlink(self) -> bool:
        return False   # fsspec paths are keys; links (local only) are handled by the local code path

    def stat(self) -> SimpleNamespace:
        info = self._info()
        if info is None:
            raise FileNotFoundError(2, "no such file", str(self))
        stamp = self.stamp_of(info)
        return SimpleNamespace(st_size=int(info.get("size") or 0), st_mtime_ns=stamp, stamp=stamp)

    @staticmethod
    def stamp_of(info: dict) -> str:
        """A file's modification stamp from an fsspec ``info`` dict (each driver names it its own way)."""
        return str(info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created"))

    def iterdir(self) -> Iterator["RemotePath"]:
        try:
            entries = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such folder", str(self)) from None
        for e in sorted(entries):
            name = e.rstrip("/").rsplit("/", 1)[-1]
            if name and e.rstrip("/") != self.path:
                yield self / name

    def glob(self, pattern: str) -> Iterator["RemotePath"]:
        try:
            children = list(self.iterdir())
        except FileNotFoundError:
            return
        for p in children:
            if fnmatch.fnmatch(p.name, pattern):
                yield p

    def rglob(self, pattern: str) -> Iterator["RemotePath"]:
        for p in sorted(self.fs.find(self.path, withdirs=True)):
            if p.rstrip("/") != self.path and fnmatch.fnmatch(p.rsplit("/", 1)[-1], pattern):
                yield RemotePath(self.fs, p, self.direct)

    # ---- reading and plain writing ---------------------------------------------
    def open(self, mode: str = "rb", **kw):
        return self.fs.open(self.path, mode, **kw)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        if self.is_file():
            raise FileExistsError(17, "a file is in the way", str(self))
        if self.is_dir() and not exist_ok:
            raise FileExistsError(17, "folder exists", str(self))
        self.fs.makedirs(self.path, exist_ok=True)   # object stores have no folders: a no-op there

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmtree(self) -> None:
        """Remove this folder and everything under it (no error when it is gone)."""
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass


class FetchedFile:
    """A remote run file read whole with one request, offering the Path methods the loaders use.

    Every call on an object store is a round trip. Checking, sizing and reading a file through
    :class:`RemotePath` took about five (exists, is_file, stat, a header read, the data read);
    the loaders in ``store.rundir`` instead make one ``info`` (type and size, checked against the
    run's limit before anything is downloaded) and one read, then parse headers and data from
    memory. ``str()`` is the file's URL, so errors still name it.
    """

    __slots__ = ("remote", "data", "_info", "size")

    def __init__(self, remote: RemotePath, data: bytes, info: dict, size: int | None = None):
        self.remote, self.data, self._info = remote, data, info
        #: The file's size: ``len(data)``, unless ``data`` is only its first bytes (a header).
        self.size = len(data) if size is None else int(size)

    def __str__(self) -> str:
        return str(self.remote)

    @property
    def name(self) -> str:
        return self.remote.name

    @property
    def suffix(self) -> str:
        return self.remote.suffix

    @property
    def parent(self) -> RemotePath:
        return self.remote.parent

    def stat(self) -> SimpleNamespace:
        stamp = RemotePath.stamp_of(self._info)
        return SimpleNamespace(st_size=self.size, st_mtime_ns=stamp, stamp=stamp)

    def open(self, mode: str = "rb") -> io.BytesIO:
        if mode != "rb":
            raise ValueError(f"{self} was fetched for reading only")
        return io.BytesIO(self.data)

    def read_bytes(self) -> bytes:
        return self.data

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)


def _from_url(url: str, direct: bool = False) -> RemotePath:
    p = run_path(url)
    assert isinstance(p, RemotePath)
    return p.with_direct(direct)


def run_path(path: str | os.PathLike | RemotePath) -> Path | RemotePath:
    """A run path as a local :class:`Path` or a :class:`RemotePath`, or a DVIError naming a bad URL.

    Checked before any work starts: an unknown scheme (``foo://``) or one whose fsspec driver
    is not installed (``s3://`` without ``s3fs``) is named in the error.
    """
    if isinstance(path, (RemotePath, Path)):
        return path
    if isinstance(path, str) and is_url(path):
        scheme = path.split("://", 1)[0] if "://" in path else path.split("::", 1)[0]
        try:
            import fsspec
            from fsspec.core import url_to_fs
        except ImportError:
            raise DVIError(f"the run path {path!r} is a URL; reading and writing runs on '{scheme}://' needs "
                           f"fsspec: pip install fsspec") from None
        try:
            fs, inner = url_to_fs(path)
        except ImportError as e:
            raise DVIError(f"the run path {path!r} uses the storage scheme '{scheme}://', whose fsspec driver "
                           f"is not installed ({e}); install it, e.g. pip install s3fs / gcsfs / adlfs") from None
        except ValueError as e:
            known = ", ".join(sorted(k for k in fsspec.available_protocols() if len(k) < 8)[:14])
            raise DVIError(f"the run path {path!r} uses the storage scheme '{scheme}://', which fsspec does not "
                           f"know ({e}); use a local path or a URL such as memory://, file://, s3://, gcs:// "
                           f"(schemes fsspec knows include: {known})") from None
        except Exception as e:   # a driver's own set-up error (credentials, bad bucket name...)
            raise DVIError(f"cannot open the run path {path!r} ('{scheme}://'): {type(e).__name__}: {e}") from None
        inner = inner if isinstance(inner, str) else inner[0]
        return RemotePath(fs, inner)
    try:
        return Path(os.fspath(path)).expanduser()
    except TypeError:
        raise DVIError(f"a run path must be a folder path or an fsspec URL string, got {type(path).__name__}") from None


def is_remote(path: Any) -> bool:
    return isinstance(path, RemotePath)


def local_of(path: Path | RemotePath) -> Path | None:
    """The local :class:`Path` behind ``path`` (itself, or a ``file://`` URL's), else None."""
    if isinstance(path, RemotePath):
        return path.local
    return Path(path)


__all__ = ["RemotePath", "FetchedFile", "run_path", "is_url", "is_remote", "local_of"]
