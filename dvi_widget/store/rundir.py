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
        fit.npz               embedding, boundary_embedding, extent, background, grid_class, knn, steps
        model.npz model.json  encoder/decoder weights and their shape
        metrics.json

Each epoch folder is written under a temporary name and renamed into place, so a
process killed mid-write leaves every finished epoch readable and the run resumes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DVIError, RunFileError

FORMAT = "dvi_widget.run"
VERSION = 1
SPLITS = ("train", "test")


def label_hash(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]


def epoch_dirname(epoch: int) -> str:
    return f"{int(epoch):06d}"


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def load_npz(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Load a .npz fully, turning any damage into an error that names the file."""
    if not path.exists():
        raise RunFileError(path, "missing run file")
    try:
        # open the file here: np.load leaks its handle when a damaged zip fails to parse
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            keys = names if names is not None else tuple(z.files)
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise RunFileError(path, f"run file lacks arrays {missing}")
            return {k: z[k] for k in keys}
    except RunFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {e})") from None


def load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise RunFileError(path, "missing run file")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {e})") from None


def load_json(path: Path) -> Any:
    if not path.exists():
        raise RunFileError(path, "missing run file")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {e})") from None


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def write_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


class EpochWriter:
    """Context manager that builds a folder under a temporary name and renames it into place."""

    def __init__(self, final: Path):
        self.final = final
        self.tmp = final.with_name(f".tmp-{final.name}-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> Path:
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.final.exists():
            # Replace a finished folder: move the old one aside first, since rename
            # cannot replace a non-empty directory. _recover() undoes a kill in between.
            old = self.final.with_name(f".old-{self.final.name}-{uuid.uuid4().hex[:8]}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)


def _recover(folder: Path) -> None:
    """Finish or undo writes that a killed process left behind."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name.startswith(".old-"):
            name = p.name.split("-")[1]
            if not (folder / name).exists():
                os.replace(p, folder / name)
            else:
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True)


class RunDir:
    """Read and write one run directory. Knows files, not algorithms."""

    def __init__(self, path: str | os.PathLike, must_exist: bool = True):
        self.path = Path(path)
        if must_exist and not (self.path / "meta.json").exists():
            if not self.path.exists():
                raise DVIError(f"no run directory at {self.path}")
            raise RunFileError(self.path / "meta.json", "not a dvi_widget run directory (missing run file)")
        self._meta: dict | None = None

    # ---- creation -------------------------------------------------------
    @classmethod
    def create(cls, path, labels: np.ndarray, classes: list[str], split: np.ndarray,
               thumbnails: np.ndarray | None, overwrite: bool) -> "RunDir":
        path = Path(path)
        if path.exists() and overwrite:
            shutil.rmtree(path)
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
        return cls(path)

    # ---- header ---------------------------------------------------------
    @property
    def meta(self) -> dict:
        if self._meta is None:
            meta = load_json(self.path / "meta.json")
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise RunFileError(self.path / "meta.json", "not a dvi_widget run file")
            if meta.get("version", 0) > VERSION:
                raise RunFileError(self.path / "meta.json",
                                   f"run format version {meta.get('version')} is newer than this dvi_widget reads ({VERSION})")
            self._meta = meta
        return self._meta

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def labels(self) -> np.ndarray:
        labels = load_npy(self.path / "labels.npy")
        if labels.shape != (self.n,):
            raise RunFileError(self.path / "labels.npy", f"labels have shape {labels.shape}, run has N={self.n}")
        if label_hash(labels) != self.meta["label_hash"]:
            raise RunFileError(self.path / "labels.npy", "labels do not match the run's label hash (damaged)")
        return labels.astype(np.int64)

    def split(self) -> np.ndarray:
        split = load_npy(self.path / "split.npy")
        if split.shape != (self.n,):
            raise RunFileError(self.path / "split.npy", f"split has shape {split.shape}, run has N={self.n}")
        return np.asarray(SPLITS, dtype=object)[split.astype(np.int64)].astype(str)

    def thumbnails(self, mmap: bool = True) -> np.ndarray | None:
        if not self.meta.get("has_thumbnails"):
            return None
        path = self.path / "thumbnails.npy"
        if not path.exists():
            raise RunFileError(path, "missing run file")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise RunFileError(path, f"damaged run file ({e})") from None

    # ---- epochs ----------------------------------------------------------
    def _epoch_list(self, sub: str) -> list[int]:
        folder = self.path / sub
        _recover(folder)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def recorded_epochs(self) -> list[int]:
        return self._epoch_list("epochs")

    def fitted_epochs(self) -> list[int]:
        return self._epoch_list("fits")

    def epoch_dir(self, epoch: int) -> Path:
        return self.path / "epochs" / epoch_dirname(epoch)

    def fit_dir(self, epoch: int) -> Path:
        return self.path / "fits" / epoch_dirname(epoch)

    def write_epoch(self, epoch: int) -> EpochWriter:
        return EpochWriter(self.epoch_dir(epoch))

    def write_fit(self, epoch: int) -> EpochWriter:
        return EpochWriter(self.fit_dir(epoch))

    def remove_fits(self, epochs: list[int]) -> None:
        for e in epochs:
            shutil.rmtree(self.fit_dir(e), ignore_errors=True)

    def iter_files(self) -> Iterator[Path]:
        yield from self.path.rglob("*")
