"""The run directory: the unit of work on disk.

Layout (every array file is a plain ``.npy``/``.npz`` read with ``allow_pickle=False``;
every description is JSON; nothing stored ever executes code on load)::

    meta.json                 format, version, N, classes, label hash, has_thumbnails
    labels.npy  split.npy     (N,) int64 labels, (N,) uint8 (0 = train, 1 = test)
    thumbnails.npy            optional (N, h, w[, 3]) uint8
    epochs/000007/            one recorded epoch (capture)
        features.npz          features (N, D) float32, boundary (M, D) float32
        outputs.npz           predictions (N,) int64, probabilities (N, C) float32
        head.json head.npz    the classifier head as a description plus weights
    fits/config.json          the fit configuration the fits below were made with
    fits/000007/              one fitted epoch
        fit.npz               embedding, boundary_embedding, extent, background, grid_class, knn, steps,
                              class_colors (the map's palette; absent in older runs)
        model.npz model.json  encoder/decoder weights and their shape
        metrics.json

Each epoch folder is written under a temporary name and renamed into place, so a
process killed mid-write leaves every finished epoch readable and the run resumes.

A run path may also be an fsspec URL (``memory://``, ``file://``, ``s3://``, ``gcs://``...;
see ``store.fs``). On file systems without atomic rename an epoch is written in place and
trusted only once its ``manifest.json`` (written last) is there: readers list only marked
epochs and never delete; see ``store.atomic`` for exactly what is and is not atomic there.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DVIError, RunFileError
from .atomic import (MANIFEST, AtomicFolder, commit_staged, folder_sizes, write_json_atomic, write_npy_atomic,
                     write_npz_atomic)
from .fs import FetchedFile, RemotePath, run_path
from .limits import _plain, byte_cap, check_file, npy_header, npz_headers

FORMAT = "dvi_widget.run"
VERSION = 1
SPLITS = ("train", "test")
MAX_JSON_BYTES = 64 * 2 ** 20

#: Files a capture folder holds (a folder from before manifests existed is complete when it has these).
EPOCH_FILES = ("features.npz", "outputs.npz", "head.json", "head.npz", "capture.json")
#: Files every fit folder holds (same use).
FIT_FILES = ("fit.npz", "metrics.json", "info.json")


def label_hash(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]


def epoch_dirname(epoch: int) -> str:
    return f"{int(epoch):06d}"


# ---- the run a file belongs to (for size caps and content checks) -----------------------
_META_CACHE: dict[tuple[str, int], dict] = {}


def _file(path) -> Path | RemotePath:
    """A run file's path as given (Path or RemotePath); strings may be URLs."""
    return path if isinstance(path, (Path, RemotePath, FetchedFile)) else run_path(path)


def _remote(path) -> bool:
    """True on a file system without atomic rename (a RemotePath that is not ``file://``)."""
    return isinstance(path, RemotePath) and path.local is None


def _writable(path) -> Path | RemotePath:
    """Where a writer works: the local Path of a local path or ``file://`` URL, else the RemotePath."""
    path = _file(path)
    if isinstance(path, RemotePath) and path.local is not None:
        return path.local
    return path


_META_WHERE: dict[str, str] = {}   # remote folder -> the folder whose meta.json serves it


def _run_meta(path: Path) -> dict | None:
    """meta.json of the run holding ``path`` (looked up to three folders up), or None."""
    folder = path.parent
    known = _META_WHERE.get(str(folder)) if isinstance(folder, RemotePath) else None
    start = folder
    if known is not None:   # on an object store each failed look-up is a round trip: remember the hit
        folder = RemotePath(folder.fs, known)
    for _ in range(3):
        m = folder / "meta.json"
        try:
            st = m.stat()
        except OSError:
            folder = folder.parent
            continue
        if isinstance(folder, RemotePath):
            _META_WHERE[str(start)] = folder.path
        key = (str(m), st.st_mtime_ns, st.st_size)
        if key not in _META_CACHE:
            try:
                meta = json.loads(m.read_text()) if st.st_size <= MAX_JSON_BYTES else None
            except (OSError, ValueError, UnicodeDecodeError):
                meta = None
            _META_CACHE[key] = meta if isinstance(meta, dict) and meta.get("format") == FORMAT else {}
        return _META_CACHE[key] or None
    return None


def _cap(path: Path, meta: dict | None = None) -> int:
    """The byte limit of a file of this run (``store.limits.byte_cap``); ``meta`` when already read."""
    meta = meta if meta is not None else _run_meta(path)
    n = meta.get("n") if meta else None
    return byte_cap(n if isinstance(n, int) and not isinstance(n, bool) else None)


# ---- content checks of well-formed files, by file name -----------------------------------
def _finite(path: Path, name: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        rows = int((~np.isfinite(a)).reshape(len(a), -1).any(1).sum()) if a.ndim else 1
        kind = "NaN" if np.isnan(a).any() else "Inf"
        raise RunFileError(path, f"{name} holds {kind} values ({rows} rows)")


def _matrix(path: Path, name: str, a: np.ndarray, cols: int | None = None) -> None:
    if a.ndim != 2 or a.dtype.kind not in "fiu" or (cols is not None and a.shape[1] != cols):
        want = f"(rows, {cols})" if cols is not None else "(rows, columns)"
        raise RunFileError(path, f"{name} must be a numeric {want} array, got {a.dtype} {a.shape}")
    _finite(path, name, a)


def _check_features(path: Path, arrays: dict, meta: dict | None) -> None:
    if "features" in arrays:
        _matrix(path, "features", arrays["features"])
        if meta and arrays["features"].shape[0] != meta.get("n"):
            raise RunFileError(path, f"features has {arrays['features'].shape[0]} rows, the run has N={meta.get('n')} (meta.json)")
    if "boundary" in arrays:
        b = arrays["boundary"]
        d = arrays["features"].shape[1] if "features" in arrays else None
        if b.size == 0 and b.ndim in (1, 2):
            return
        _matrix(path, "boundary", b, d)


def _check_outputs(path: Path, arrays: dict, meta: dict | None) -> None:
    c = len(meta["classes"]) if meta and isinstance(meta.get("classes"), list) else None
    n = meta.get("n") if meta else None
    if "probabilities" in arrays:
        _matrix(path, "probabilities", arrays["probabilities"], c)
    if "predictions" in arrays:
        p = arrays["predictions"]
        if p.ndim != 1 or p.dtype.kind not in "iu":
            raise RunFileError(path, f"predictions must be integers (N,), got {p.dtype} {p.shape}")
        if n is not None and len(p) != n:
            raise RunFileError(path, f"predictions has {len(p)} entries, the run has N={n} (meta.json)")
        if c is not None and len(p) and (p.min() < 0 or p.max() >= c):
            raise RunFileError(path, f"predictions hold classes outside range({c}) (e.g. {int(p.max())})")


def _check_fit(path: Path, arrays: dict, meta: dict | None) -> None:
    if "embedding" in arrays:
        _matrix(path, "embedding", arrays["embedding"], 2)
        if meta and len(arrays["embedding"]) != meta.get("n"):
            raise RunFileError(path, f"embedding has {len(arrays['embedding'])} rows, the run has N={meta.get('n')} (meta.json)")
    if "extent" in arrays:
        e = arrays["extent"]
        if e.shape != (4,) or not np.isfinite(e).all() or e[0] >= e[1] or e[2] >= e[3]:
            raise RunFileError(path, f"extent must be 4 finite numbers xmin < xmax, ymin < ymax, got {e.tolist()}")


CONTENT_CHECKS = {"features.npz": _check_features, "outputs.npz": _check_outputs, "fit.npz": _check_fit}


# ---- reading ------------------------------------------------------------------------------
def _slack(cap: int) -> int:
    """How much larger than its declared arrays a file may be: zip and .npy headers, and deflate's
    small growth on data it cannot compress."""
    return cap // 64 + 2 ** 20


NPY_HEADER_BYTES = 10_016   # magic, version, length and the 10,000 header bytes numpy reads at most


def _readable(path: Path | RemotePath, max_bytes: int, head_only: bool = False) -> Path | RemotePath | FetchedFile:
    """``check_file``; on an object store (no local path) the file is instead read whole with one
    ``info`` and one request (``store.fs.FetchedFile``), refused unread when over ``max_bytes``.
    ``head_only``: only a ``.npy`` header's bytes are read (its rows are fetched on demand)."""
    if isinstance(path, FetchedFile):
        return path
    if not _remote(path):
        check_file(path)
        return path
    info = path._info()
    if info is None:
        raise RunFileError(path, "missing run file")
    if info.get("type") != "file":
        raise RunFileError(path, "not a regular file")
    size = int(info.get("size") or 0)
    if size > max_bytes:
        raise RunFileError(path, f"run file is {size:,} bytes, over this run's limit of {max_bytes:,} bytes")
    try:
        if head_only:
            head = path.fs.cat_file(path.path, start=0, end=min(size, NPY_HEADER_BYTES))
            return FetchedFile(path, head, info, size=size)
        return FetchedFile(path, path.read_bytes(), info)
    except FileNotFoundError:
        raise RunFileError(path, "missing run file") from None
    except OSError as e:
        raise RunFileError(path, f"unreadable run file ({type(e).__name__}: {e})") from None


def fetch(path: Path | RemotePath, meta: dict | None = None,
          head_only: bool = False) -> tuple[Path | RemotePath | FetchedFile, int]:
    """(the file ready to read, this run's byte limit): what every loader starts with, and what a
    reader that checks headers itself passes on to ``load_npz``/``load_npy`` (on an object store the
    file is then downloaded once). ``meta``: the run's meta.json when already read; ``head_only``:
    see ``_readable``."""
    path = _file(path)
    cap = _cap(path, meta)
    return _readable(path, cap + _slack(cap), head_only=head_only), cap


def load_npz(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Load a .npz fully, turning any damage into an error that names the file.

    Sizes are checked from the headers before anything is read (``store.limits``), and
    the content of known files (features, outputs, fit) is checked after.
    """
    path = _file(path)
    meta = _run_meta(path)
    path, cap = fetch(path, meta)
    headers = npz_headers(path, cap)
    keys = names if names is not None else tuple(headers)
    missing = [k for k in keys if k not in headers]
    if missing:
        raise RunFileError(path, f"run file lacks arrays {missing}")
    try:
        # open the file here: np.load leaks its handle when a damaged zip fails to parse
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, RuntimeError, NotImplementedError,
            zlib.error, struct.error, MemoryError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {_plain(e)})") from None
    check = CONTENT_CHECKS.get(path.name)
    if check is not None:
        check(path, arrays, meta)
    return arrays


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """Load a .npy after checking its header against its size and the run's cap."""
    path, cap = fetch(path)
    npy_header(path, cap)
    try:
        if isinstance(path, FetchedFile):   # no memory map through fsspec: read whole, once
            return np.load(path.open(), allow_pickle=False)
        if isinstance(path, RemotePath):    # file:// (local underneath)
            path = path.local
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {_plain(e)})") from None


def load_json(path: Path) -> Any:
    path = _readable(_file(path), MAX_JSON_BYTES)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise RunFileError(path, f"run file is {path.stat().st_size:,} bytes, more than a JSON run file may be")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {e})") from None


# ---- writing: every file through the one atomic writer (store.atomic) ---------------------
def write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj)


def write_npy(path: Path, arr: np.ndarray) -> None:
    write_npy_atomic(path, arr)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    write_npz_atomic(path, **arrays)


#: The folder writer (kept under its old name for callers).
EpochWriter = AtomicFolder


def is_complete(folder: Path, legacy_files: tuple[str, ...], verify: bool = False) -> bool:
    """True when ``folder`` was finished by its writer: its manifest (written last) is there.

    ``verify=True`` also checks that every file the manifest lists is there with its size
    (what a fit checks before it counts an epoch as fitted). A folder from before manifests
    existed counts when it holds ``legacy_files``. Readers list with ``verify=False``, so a
    damaged or missing file is named when it is read rather than hiding its epoch.
    """
    m = folder / MANIFEST
    if _remote(folder):   # no legacy folders on remote file systems: the manifest is the only marker
        if not m.exists():
            return False
        if not verify:
            return True
        try:
            files, have = json.loads(m.read_text())["files"], folder_sizes(folder)
            return isinstance(files, dict) and all(have.get(name) == size for name, size in files.items())
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            return False
    if not m.exists():
        return all((folder / f).is_file() for f in legacy_files)
    if not verify:
        return True
    try:
        files = json.loads(m.read_text())["files"]
        return isinstance(files, dict) and all((folder / name).stat().st_size == size
                                               for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        return False


def recover(path: str | os.PathLike) -> None:
    """Finish or undo writes that killed writers left behind. Only the run's writer, under its lock.

    ``.tmp-*`` folders (unfinished writes) and ``.del-*`` folders (removals) are deleted; an
    ``.old-NNNNNN-*`` folder (a replace killed between its two renames) is put back when the
    new folder never arrived, else deleted. Also removes stray temporary files.

    On a file system without atomic rename (``_recover_remote``): an epoch folder without its
    manifest (a killed writer's half-written epoch) is removed; a staged replacement
    (``.tmp-*`` with its manifest) whose epoch lost its manifest is rolled forward.
    """
    path = _writable(path)
    if isinstance(path, RemotePath):
        _recover_remote(path)
        return
    for sub in ("epochs", "fits"):
        folder = path / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".old-"):
                name = p.name.split("-")[1]
                if not (folder / name).exists():
                    os.replace(p, folder / name)
                else:
                    shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith((".tmp-", ".del-")):
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.endswith(".part") and p.name.startswith("."):
                p.unlink(missing_ok=True)
    for p in path.glob(".*.part"):
        p.unlink(missing_ok=True)
    for p in path.glob(".del-*"):
        shutil.rmtree(p, ignore_errors=True)


def listing(folder: RemotePath) -> dict[str, dict[str, int]]:
    """{entry name: {file name: size}} of ``folder``'s files one level down, and
    {"": {file name: size}} for the files directly in it, from one recursive listing
    (object stores list a whole prefix in a few paged requests; a request per epoch
    folder would cost minutes on a run of hundreds of epochs)."""
    fs = folder.fs
    try:
        found = fs.find(folder.path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    root = fs._strip_protocol(folder.path).rstrip("/")
    out: dict[str, dict[str, int]] = {}
    for key, info in found.items():
        if info.get("type") != "file":
            continue
        rel = fs._strip_protocol(key)[len(root):].strip("/").split("/")
        if len(rel) == 1:
            out.setdefault("", {})[rel[0]] = int(info.get("size") or 0)
        elif len(rel) == 2:
            out.setdefault(rel[0], {})[rel[1]] = int(info.get("size") or 0)
    return out


def _recover_remote(path: RemotePath) -> None:
    for sub in ("epochs", "fits"):
        folder = path / sub
        entries = listing(folder)
        staged = {name: files for name, files in entries.items() if name.startswith(".tmp-")}
        for name, files in staged.items():   # first: staged replacements (rolled forward or dropped)
            final = name.split("-")[1]
            if MANIFEST in files and final in entries and MANIFEST not in entries[final]:
                commit_staged(folder / name, folder / final)   # a replace killed mid-copy: finish it
            else:
                (folder / name).rmtree()
        if staged:
            entries = listing(folder)
        for name, files in entries.items():
            p = folder / name
            if name == "":
                for f in files:
                    if f.startswith(".") and f.endswith(".part"):
                        (folder / f).unlink(missing_ok=True)
            elif name.startswith((".del-", ".old-")):
                p.rmtree()
            elif name.isdigit():
                if MANIFEST not in files:
                    p.rmtree()   # half-written by a killed writer: never read, written again next time
                else:
                    for f in files:
                        if f.startswith(".") and f.endswith(".part"):
                            (p / f).unlink(missing_ok=True)
    for p in path.glob(".*.part"):
        p.unlink(missing_ok=True)


#: Kept for callers of the old name; recovery is the writer's job (store.lock calls it).
_recover = recover


def run_entries_unexpected(path: Path) -> list[str]:
    """Entries under ``path`` that a dvi_widget run never holds (empty list: provably a run's files)."""
    from .lock import HOLDER_NAME, LOCK_NAME
    path = _writable(path)
    top = {"meta.json", "labels.npy", "split.npy", "thumbnails.npy", "epochs", "fits", LOCK_NAME, HOLDER_NAME,
           "map.html"}   # map.html: the page the demo writes beside its run
    odd: list[str] = []

    def transient(name: str) -> bool:
        return name.startswith((".tmp-", ".old-", ".del-")) or (name.startswith(".") and name.endswith(".part"))

    for p in path.iterdir():
        if p.name in top or transient(p.name):
            if p.is_symlink() or (p.name in ("epochs", "fits") and not p.is_dir()):
                odd.append(str(p))
            continue
        odd.append(str(p))
    for sub in ("epochs", "fits"):
        folder = path / sub
        if not folder.is_dir() or folder.is_symlink():
            continue
        for p in folder.iterdir():
            if p.is_symlink():
                odd.append(str(p))
            elif p.is_dir() and (p.name.isdigit() or transient(p.name)):
                for q in p.iterdir():
                    if q.is_dir() or q.is_symlink() or not (q.suffix in (".npz", ".npy", ".json", ".part")):
                        odd.append(str(q))
            elif not (sub == "fits" and p.name == "config.json") and not transient(p.name):
                odd.append(str(p))
    return odd


class RemoteRows:
    """Rows of a C-ordered ``.npy`` on a remote file system, read on demand (what a memory map is
    locally): ``rows[indices]`` fetches only those rows, in one batch of ranged reads
    (``fs.cat_ranges``), so a widget's thumbnails never download the whole file."""

    def __init__(self, path: RemotePath, shape: tuple[int, ...], dtype: np.dtype, offset: int):
        self.path, self.shape, self.dtype, self.offset = path, shape, np.dtype(dtype), offset
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @classmethod
    def open(cls, path: RemotePath, shape, dtype, header: FetchedFile | None = None) -> "RemoteRows | None":
        """None when the array is Fortran-ordered (rows not contiguous): then it is read whole.
        ``header``: the file's first bytes, already fetched."""
        with (header or path).open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _shape, fortran, _dtype = read(f, max_header_size=10000)
            offset = f.tell()
        return None if fortran else cls(path, tuple(shape), dtype, offset)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        idx = np.arange(self.shape[0])[index]
        scalar = np.ndim(idx) == 0
        idx = np.atleast_1d(idx).astype(np.int64)
        uniq = np.unique(idx)
        # consecutive rows are read as one range
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        runs = np.split(uniq, breaks) if len(uniq) else []
        starts = [self.offset + int(r[0]) * self.row_bytes for r in runs]
        ends = [self.offset + (int(r[-1]) + 1) * self.row_bytes for r in runs]
        try:
            chunks = self.path.fs.cat_ranges([self.path.path] * len(runs), starts, ends) if runs else []
        except (OSError, ValueError) as e:
            raise RunFileError(self.path, f"damaged run file ({type(e).__name__}: {e})") from None
        data = b"".join(chunks)
        if len(data) != len(uniq) * self.row_bytes:
            raise RunFileError(self.path, "damaged run file (shorter than its header declares)")
        table = np.frombuffer(data, dtype=self.dtype).reshape((len(uniq),) + self.shape[1:])
        out = table[np.searchsorted(uniq, idx)]
        return out[0] if scalar else out

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a.astype(dtype) if dtype is not None else a


class RunDir:
    """Read and write one run directory. Knows files, not algorithms.

    Reading never changes the folder (no recovery, no deletion): many readers may list
    and load while one writer (see ``store.lock``) adds epochs.
    """

    def __init__(self, path: str | os.PathLike | RemotePath, must_exist: bool = True):
        self.path = run_path(path)
        if must_exist and not (self.path / "meta.json").exists():
            if not self.path.exists():
                raise DVIError(f"no run directory at {self.path}")
            raise RunFileError(self.path / "meta.json", "not a dvi_widget run directory (missing run file)")
        self._meta: dict | None = None

    # ---- creation -------------------------------------------------------
    @classmethod
    def create(cls, path, labels: np.ndarray, classes: list[str], split: np.ndarray,
               thumbnails: np.ndarray | None, overwrite: bool = False) -> "RunDir":
        """Write a new run's header. The caller holds the writer lock on ``path`` (it must exist).

        ``overwrite=True`` first empties ``path``, which must be provably a run (see
        :func:`clear_run`).
        """
        given = run_path(path)
        path = _writable(given)
        if overwrite and (path / "meta.json").exists():
            clear_run(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "epochs").mkdir(exist_ok=True)
        (path / "fits").mkdir(exist_ok=True)
        write_npy(path / "labels.npy", labels.astype(np.int64))
        write_npy(path / "split.npy", split.astype(np.uint8))
        if thumbnails is not None:
            write_npy(path / "thumbnails.npy", thumbnails)
        meta = {"format": FORMAT, "version": VERSION, "n": int(len(labels)), "classes": list(classes),
                "label_hash": label_hash(labels), "has_thumbnails": thumbnails is not None}
        write_json(path / "meta.json", meta)  # written last: its presence marks a complete header
        return cls(given)

    # ---- header ---------------------------------------------------------
    @property
    def meta(self) -> dict:
        if self._meta is None:
            path = self.path / "meta.json"
            meta = load_json(path)
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise RunFileError(path, "not a dvi_widget run file")
            version = meta.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise RunFileError(path, f"run format version must be an integer, got {version!r}")
            if version > VERSION:
                raise RunFileError(path, f"run format version {version} is newer than this dvi_widget reads ({VERSION})")
            n, classes = meta.get("n"), meta.get("classes")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise RunFileError(path, f"'n' must be a positive integer, got {n!r}")
            if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
                raise RunFileError(path, f"'classes' must be a list of at least 2 names, got {str(classes)[:80]}")
            if not isinstance(meta.get("label_hash"), str):
                raise RunFileError(path, f"'label_hash' must be a string, got {meta.get('label_hash')!r}")
            if not isinstance(meta.get("has_thumbnails", False), bool):
                raise RunFileError(path, f"'has_thumbnails' must be true or false, got {meta.get('has_thumbnails')!r}")
            self._meta = meta
        return self._meta

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def labels(self) -> np.ndarray:
        path = self.path / "labels.npy"
        labels = load_npy(path)
        if labels.shape != (self.n,) or labels.dtype.kind not in "iu":
            raise RunFileError(path, f"labels must be N={self.n} integers (N as meta.json says), got {labels.dtype} {labels.shape}")
        if label_hash(labels) != self.meta["label_hash"]:
            raise RunFileError(path, "labels do not match the label hash in meta.json (damaged)")
        if labels.min() < 0 or labels.max() >= len(self.classes):
            raise RunFileError(path, f"labels outside range({len(self.classes)}) (the classes in meta.json)")
        return labels.astype(np.int64)

    def split(self) -> np.ndarray:
        path = self.path / "split.npy"
        split = load_npy(path)
        if split.shape != (self.n,) or split.dtype.kind not in "iub":
            raise RunFileError(path, f"split must be N={self.n} codes (0 = train, 1 = test; N as meta.json says), got {split.dtype} {split.shape}")
        codes = split.astype(np.int64)
        bad = (codes < 0) | (codes >= len(SPLITS))
        if bad.any():
            raise RunFileError(path, f"split codes must be 0 (train) or 1 (test), got {sorted(set(codes[bad].tolist()))[:5]}")
        return np.asarray(SPLITS, dtype=object)[codes].astype(str)

    def thumbnails(self, mmap: bool = True) -> np.ndarray | None:
        if not self.meta.get("has_thumbnails"):
            return None
        path = self.path / "thumbnails.npy"
        # on an object store only the header is read here: rows are fetched on demand (RemoteRows)
        head, cap = fetch(path, head_only=mmap)
        shape, dtype = npy_header(head, cap)
        if dtype != np.uint8 or len(shape) not in (3, 4) or shape[0] != self.n or (len(shape) == 4 and shape[3] != 3):
            raise RunFileError(path, f"thumbnails must be uint8 (N={self.n}, h, w[, 3]) (N as meta.json says), got {dtype} {shape}")
        if mmap and _remote(path):
            rows = RemoteRows.open(path, shape, dtype, header=head)
            if rows is not None:
                return rows
        return load_npy(path if mmap else head, mmap=mmap)

    # ---- epochs ----------------------------------------------------------
    def _epoch_list(self, sub: str, legacy: tuple[str, ...], verify: bool) -> list[int]:
        """Finished epoch folders under ``sub``. Never changes anything (readers run beside a writer)."""
        folder = self.path / sub
        if _remote(folder):
            return self._remote_epoch_list(folder, verify)
        try:
            entries = list(folder.iterdir())
        except OSError:
            return []
        return sorted(int(p.name) for p in entries
                      if p.name.isdigit() and p.is_dir() and is_complete(p, legacy, verify))

    @staticmethod
    def _remote_epoch_list(folder: RemotePath, verify: bool) -> list[int]:
        """One listing of the whole folder (see :func:`listing`), instead of requests per epoch."""
        sizes = {k: v for k, v in listing(folder).items() if k.isdigit() and MANIFEST in v}
        # (an epoch without its manifest is unmarked: being written, or left by a killed writer)
        manifests: dict[str, bytes] = {}
        if verify and sizes:   # every manifest in one batch (object-store drivers fetch them concurrently)
            keys = {(folder / name / MANIFEST).path: name for name in sizes}
            try:
                got = folder.fs.cat(list(keys), on_error="omit")
            except (OSError, ValueError):
                got = {}
            stripped = {folder.fs._strip_protocol(k): v for k, v in got.items()}
            manifests = {keys[k]: stripped[k] for k in keys if k in stripped}
        out = []
        for name, files in sizes.items():
            if verify:
                try:
                    listed = json.loads(manifests[name])["files"]
                    if not (isinstance(listed, dict) and all(files.get(k) == v for k, v in listed.items())):
                        continue
                except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
                    continue
            out.append(int(name))
        return sorted(out)

    def recorded_epochs(self) -> list[int]:
        """Epochs whose capture folder was finished (its manifest is there)."""
        return self._epoch_list("epochs", EPOCH_FILES, False)

    def fitted_epochs(self, verify: bool = False) -> list[int]:
        """Epochs whose fit folder was finished.

        ``verify=True`` (what a fit uses to decide what is left to fit) also checks that
        every file the manifest lists is there, whole: anything else is fitted again.
        """
        return self._epoch_list("fits", FIT_FILES, verify)

    def epoch_dir(self, epoch: int) -> Path | RemotePath:
        return self.path / "epochs" / epoch_dirname(epoch)

    def fit_dir(self, epoch: int) -> Path | RemotePath:
        return self.path / "fits" / epoch_dirname(epoch)

    def write_epoch(self, epoch: int) -> AtomicFolder:
        return AtomicFolder(self.epoch_dir(epoch))

    def write_fit(self, epoch: int) -> AtomicFolder:
        return AtomicFolder(self.fit_dir(epoch))

    def remove_fits(self, epochs: list[int]) -> None:
        """Remove fit folders, each in one rename (readers never see half a folder).

        Without atomic rename: each folder's manifest goes first (readers stop listing it).
        """
        for e in epochs:
            d = _writable(self.fit_dir(e))
            if isinstance(d, RemotePath):
                (d / MANIFEST).unlink(missing_ok=True)
                d.rmtree()
                continue
            if d.exists():
                aside = d.with_name(f".del-{d.name}-{uuid.uuid4().hex[:8]}")
                os.replace(d, aside)
                shutil.rmtree(aside, ignore_errors=True)

    def iter_files(self) -> Iterator[Path | RemotePath]:
        yield from self.path.rglob("*")


def is_our_run(path: Path) -> bool:
    """True when ``path/meta.json`` carries dvi_widget's run format marker."""
    try:
        meta = json.loads((_file(path) / "meta.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def check_clearable(path: Path) -> None:
    """Raise a DVIError unless ``path`` is provably a dvi_widget run that ``overwrite=True`` may empty."""
    path = _writable(path)
    if not is_our_run(path):
        raise DVIError(f"overwrite=True refused: {path / 'meta.json'} is not a dvi_widget run's "
                       f"(no \"format\": \"{FORMAT}\"); nothing was removed")
    odd = run_entries_unexpected(path)
    if odd:
        raise DVIError(f"overwrite=True refused: {path} holds entries a dvi_widget run never has "
                       f"({odd[:5]}{' ...' if len(odd) > 5 else ''}); nothing was removed. Move them away or "
                       f"choose another path")


def clear_run(path: Path) -> list[str]:
    """Empty a run directory for ``overwrite=True``; refuses anything not provably a dvi_widget run.

    Provably a run: ``meta.json`` carries dvi_widget's format marker and every entry is one
    a run holds. Returns (and the caller reports) what was removed. The writer lock files stay.
    """
    from .lock import HOLDER_NAME, LOCK_NAME
    path = _writable(path)
    check_clearable(path)
    removed = []
    if isinstance(path, RemotePath):   # no folder rename: unmark every epoch first, then delete
        for sub in ("epochs", "fits"):
            for m in list((path / sub).glob("*")):
                (m / MANIFEST).unlink(missing_ok=True)
    for p in sorted(path.iterdir(), key=lambda q: (q.name == "meta.json", q.name)):   # meta.json last
        if p.name in (LOCK_NAME, HOLDER_NAME):
            continue
        removed.append(p.name)
        if isinstance(p, RemotePath):
            p.rmtree() if p.is_dir() else p.unlink(missing_ok=True)
        elif p.is_dir():
            aside = p.with_name(f".del-{p.name}-{uuid.uuid4().hex[:8]}")
            os.replace(p, aside)
            shutil.rmtree(aside)
        else:
            p.unlink()
    return removed
