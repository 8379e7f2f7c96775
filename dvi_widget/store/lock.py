"""One writer per run directory: a file lock, a note naming its holder, and recovery under the lock.

A run has many readers (widgets, ``Visualization.reload()``, exports) and at most one
writer at a time: a ``Recorder`` (from creation to ``close()``) or a ``dvi.fit``. The
writer holds an OS file lock on ``RUN/.writer.lock`` (``filelock``: ``flock`` on Unix, so
a killed writer's lock is released by the kernel) and describes itself in
``RUN/.writer.json`` (pid, host, what, since). A second writer in another process gets a
:class:`DVIError` naming that holder instead of a race.

Readers never take the lock and never change anything. Whatever a killed writer left
behind (temporary ``.tmp-*`` folders, an epoch moved aside mid-replace) is cleaned up by
the next writer, right after it takes the lock, when no one else can be writing.

On a run stored through fsspec (``memory://``, ``s3://``, ... see ``store.fs``) there is no
OS lock to take: ``filelock`` cannot lock an object store. There the lock is the note itself,
``RUN/.writer.json``, created with exclusive create (``open(..., "xb")``: it fails when the
key exists; fsspec's local and memory file systems, and object-store drivers that support
conditional writes, honour it). What that guarantees:

- it is advisory: dvi_widget's writers respect it; nothing stops another program writing;
- two writers that start at once cannot both create the note where the file system honours
  exclusive create; where a driver does not support it, the note is written when absent and
  read back, which narrows the race but cannot close it (said in the error message);
- a killed writer cannot release it (there is no kernel to do so). Stale-lock recovery: a
  note left by a process on THIS host that is no longer running is taken over automatically;
  a note from another host is never broken automatically (its process may still be
  running): the error names the holder, and once you know it is gone,
  :func:`break_lock` (or deleting ``RUN/.writer.json``) frees the run;
- release deletes the note only when it is still this writer's (a token in the note).
``file://`` URLs are local: they get the OS lock as local paths do.

Within one process the lock is re-entrant: ``dvi.fit`` called while this process's own
``Recorder`` is open (``rec.show()``, or a fit in the same notebook) writes under the
Recorder's lock. A new ``Recorder`` on the same path in the same process (a re-run
notebook cell) takes the lock over and closes the old one.
"""
from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

from ..errors import DVIError
from .fs import RemotePath, run_path

LOCK_NAME = ".writer.lock"
HOLDER_NAME = ".writer.json"


class _Hold:
    """This process's hold on one run's lock: the OS lock, how many users share it, the note."""

    def __init__(self, lock, info: dict):
        self.lock = lock
        self.count = 0
        self.info = info
        self.on_superseded: Callable[[], None] | None = None


_held: dict[str, _Hold] = {}
_guard = threading.RLock()


def _where(path) -> Path | RemotePath:
    """The lock's location: a local Path (local paths and ``file://`` URLs), else a RemotePath."""
    p = run_path(path)
    if isinstance(p, RemotePath) and p.local is not None:
        return p.local
    return p


def _key(path) -> str:
    return str(path) if isinstance(path, RemotePath) else os.path.realpath(path)


def holder(path) -> dict | None:
    """The note of the run's current (or last) writer, or None when there is none readable."""
    try:
        info = json.loads((_where(path) / HOLDER_NAME).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def describe_holder(info: dict | None) -> str:
    if not info:
        return "another process (it left no note saying which)"
    return (f"{info.get('what', 'a writer')} in process {info.get('pid', '?')} on host "
            f"{info.get('host', '?')}, since {info.get('since', '?')}")


def _busy(path: Path, what: str) -> DVIError:
    return DVIError(
        f"cannot {what}: {path} is being written by {describe_holder(holder(path))}. "
        f"A run has one writer at a time (a Recorder until it is closed, or a fit); "
        f"wait for it to finish or close that Recorder, then try again. Reading the run meanwhile is fine.")


def _acquire_os_lock(path: Path, what: str):
    from filelock import FileLock, Timeout
    try:
        lock = FileLock(path / LOCK_NAME, timeout=0, thread_local=False, preserve_lock_file=True)
    except TypeError:   # filelock before preserve_lock_file: Unix locks keep the file anyway
        lock = FileLock(path / LOCK_NAME, timeout=0, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise _busy(path, what) from None
    except OSError as e:
        raise DVIError(f"cannot {what}: cannot lock {path / LOCK_NAME}: {e.strerror or e}") from None
    return lock


def _pid_gone(info: dict | None) -> bool:
    """True when the note names a process on this host that is no longer running."""
    if not info or info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    if info["pid"] == os.getpid():
        return False   # this process: only a hold released by a crash-free path, never stale
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class _FsLock:
    """The writer lock on an fsspec file system: the exclusively created ``.writer.json``."""

    def __init__(self, note: RemotePath, token: str):
        self.note, self.token = note, token

    def release(self) -> None:
        try:
            mine = json.loads(self.note.read_text()).get("token") == self.token
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            mine = False
        if mine:
            self.note.unlink(missing_ok=True)


def _acquire_fs_lock(path: RemotePath, what: str, info: dict) -> _FsLock:
    note = path / HOLDER_NAME
    token = uuid.uuid4().hex
    data = json.dumps({**info, "token": token, "lock": "exclusive create of this file"}, indent=1).encode()
    for attempt in range(2):
        try:
            with note.fs.open(note.path, "xb") as f:
                f.write(data)
            return _FsLock(note, token)
        except FileExistsError:
            if attempt == 0 and _pid_gone(holder(path)):
                note.unlink(missing_ok=True)   # its writer on this host is gone: a stale lock
                continue
            raise _busy(path, what) from None
        except (NotImplementedError, ValueError, TypeError):
            # the driver has no exclusive create: write when absent, then read back (narrows, not closes, the race)
            if note.exists() and not (attempt == 0 and _pid_gone(holder(path))):
                raise _busy(path, what) from None
            note.fs.pipe_file(note.path, data)
            if holder(path) and holder(path).get("token") == token:
                return _FsLock(note, token)
            raise _busy(path, what) from None
        except OSError as e:
            raise DVIError(f"cannot {what}: cannot create the writer lock {note}: {e.strerror or e}") from None
    raise _busy(path, what)


def break_lock(path) -> dict | None:
    """Remove a run's writer lock left by a writer that is gone; returns the note it removed.

    Only for a run on an fsspec file system (``memory://``, ``s3://``...), whose lock a killed
    writer cannot release and which is not broken automatically when its writer ran on
    another host. Make sure that writer is no longer running first: this does not check.
    Local runs need none of this (the kernel releases their lock).
    """
    where = _where(path)
    if not isinstance(where, RemotePath):
        raise DVIError(f"{where} is a local run: its lock is released by the kernel when its writer exits; "
                       f"there is nothing to break")
    info = holder(where)
    (where / HOLDER_NAME).unlink(missing_ok=True)
    return info


def _write_note(path: Path, info: dict) -> None:
    from .atomic import write_text_atomic
    try:
        write_text_atomic(path / HOLDER_NAME, json.dumps(info, indent=1))
    except DVIError:
        pass  # the note is a courtesy for error messages; the lock itself is what excludes


def acquire(path: str | os.PathLike, what: str, *, exclusive_owner: Any = None,
            on_superseded: Callable[[], None] | None = None) -> "WriterHold":
    """Take the run's writer lock (re-entrant within this process) and return a hold to release.

    ``what`` names the writer in other processes' errors ("Recorder", "dvi.fit").
    ``exclusive_owner``: a long-lived holder (a Recorder). A second exclusive holder in this
    process takes the hold over; ``on_superseded`` of the previous one is called.
    The run folder must exist. On the first acquisition in this process, leftovers of
    killed writers are recovered (see :func:`dvi_widget.store.rundir.recover`).
    """
    path = _where(path)
    remote = isinstance(path, RemotePath)
    if not remote and not path.is_dir():   # object stores have no folders: nothing to check there
        raise DVIError(f"no run directory at {path}")
    key = _key(path)
    with _guard:
        hold = _held.get(key)
        if hold is None:
            info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                    "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            lock = _acquire_fs_lock(path, what, info) if remote else _acquire_os_lock(path, what)
            hold = _held[key] = _Hold(lock, info)
            try:
                if not remote:
                    _write_note(path, info)
                from .rundir import recover
                recover(path)
            except BaseException:
                del _held[key]
                lock.release()
                raise
        hold.count += 1
        if exclusive_owner is not None:
            previous = hold.on_superseded
            hold.on_superseded = on_superseded
            if previous is not None:
                previous()   # the previous exclusive holder closes and releases its share
        return WriterHold(key)


class WriterHold:
    """A hold on a run's writer lock; ``release()`` (idempotent) gives it back."""

    def __init__(self, key: str):
        self._key = key
        self._released = False

    def release(self) -> None:
        with _guard:
            if self._released:
                return
            self._released = True
            hold = _held.get(self._key)
            if hold is None:
                return
            hold.count -= 1
            if hold.count <= 0:
                del _held[self._key]
                hold.lock.release()

    def __enter__(self) -> "WriterHold":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def held_here(path: str | os.PathLike) -> bool:
    """True when this process holds the run's writer lock."""
    with _guard:
        return _key(_where(path)) in _held


def writes_run(what: str) -> Callable:
    """Decorator: hold the writer lock of the run named by the function's first argument while it runs."""
    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        first = next(iter(sig.parameters))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            run = args[0] if args else kwargs[first]
            where = _where(run)              # a bad URL scheme is a DVIError here, before any work
            if not (where / "meta.json").exists():
                return fn(*args, **kwargs)   # not a run: let the function raise its own clear error
            with acquire(where, what):
                return fn(*args, **kwargs)
        return wrapper
    return deco
