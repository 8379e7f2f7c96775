"""The fitted results of a run: what the widget, the pictures and the reports read.

A ``Visualization`` reads a run directory lazily, one epoch at a time (a small cache keeps
recent epochs), so a long run never sits in memory at once.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .errors import DVIError, RunFileError, unknown_epoch
from .store.heads import load_head
from .engine.metrics import stab_spearman
from .palette import class_colors, legacy_class_colors, recolor_map
from .store.atomic import write_manifest
from .store.fs import RemotePath, is_url, run_path
from .store.rundir import RunDir, load_json, load_npz
from .engine.extension import project_features
from .engine.vismodel import VisModel, batched, load_vismodel

_FIT_ARRAYS = ("embedding", "boundary_embedding", "extent", "background", "grid_class", "high_step", "low_step")


def _no_follow(path, flags):
    """open() that refuses to follow a link at the last path component (a link swapped in late)."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def _check_metrics(path: Path) -> dict[str, float]:
    """metrics.json: an object of metric names to numbers (null for a metric that has no value)."""
    m = load_json(path)
    if not isinstance(m, dict):
        raise RunFileError(path, f"metrics must be a JSON object of name: number, got a {type(m).__name__}")
    for k, v in m.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise RunFileError(path, f"metric {k!r} must be a number, got {str(v)[:40]}")
    return m


class Visualization:
    """Per-epoch projections, inverse projections, decision maps and metrics of one run."""

    _CACHE_EPOCHS = 8

    def __init__(self, path: str | os.PathLike):
        """``path``: a run directory, local or an fsspec URL (``memory://``, ``file://``, ``s3://``...)."""
        self.run = RunDir(path)
        self.path = self.run.path
        self._labels = self.run.labels()
        self._split = self.run.split()
        self.reload()

    # ---- run-level -------------------------------------------------------
    def reload(self) -> None:
        """Re-read the run directory: epochs fitted since are picked up (live widgets)."""
        self._epochs = [e for e in self.run.fitted_epochs() if e in set(self.run.recorded_epochs())]
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._metrics: dict | None = None

    @property
    def epochs(self) -> list[int]:
        return list(self._epochs)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def classes(self) -> list[str]:
        return self.run.classes

    @property
    def split(self) -> np.ndarray:
        return self._split

    @property
    def colors(self) -> np.ndarray:
        """(C, 3) uint8 class colours, the palette of the decision maps."""
        return class_colors(len(self.classes))

    @property
    def run_id(self) -> str:
        """Identifies the run (its labels and classes) for widget state files."""
        return f"{self.run.meta['label_hash']}-{len(self.classes)}"

    @property
    def n(self) -> int:
        return self.run.n

    @property
    def has_thumbnails(self) -> bool:
        return bool(self.run.meta.get("has_thumbnails"))

    def thumbnails(self, indices) -> np.ndarray:
        """(M, h, w[, 3]) uint8 thumbnails of the given samples."""
        thumbs = self.run.thumbnails()
        if thumbs is None:
            raise DVIError("this run has no thumbnails (record image inputs or pass images= to the Recorder)")
        idx = self._indices(indices)
        return np.asarray(thumbs[idx])

    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = (idx < 0) | (idx >= self.n)
        if bad.any():
            raise DVIError(f"sample indices out of range(0, {self.n}): {idx[bad][:5].tolist()}")
        return idx

    # ---- per epoch -------------------------------------------------------
    def _check(self, epoch) -> int:
        if isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool) and int(epoch) in self._epochs:
            return int(epoch)
        raise unknown_epoch(epoch, self._epochs)

    def _cached(self, key, load):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = load()
        self._cache[key] = value
        while len(self._cache) > self._CACHE_EPOCHS * 3:
            self._cache.popitem(last=False)
        return value

    def _fit(self, epoch) -> dict[str, np.ndarray]:
        e = self._check(epoch)
        return self._cached(("fit", e), lambda: self._load_fit(e))

    def _load_fit(self, e) -> dict[str, np.ndarray]:
        """An epoch's fit arrays, its map in today's class colours (dvi_widget/palette.py).

        fit.npz records the palette its map was painted with (``class_colors``); fits written
        before it did used ``legacy_class_colors``. A map painted with other colours than
        ``self.colors`` is repainted here, so the map and the points always agree."""
        path = self.run.fit_dir(e) / "fit.npz"
        fit = load_npz(path, _FIT_ARRAYS)
        C = len(self.classes)
        try:
            painted = load_npz(path, ("class_colors",))["class_colors"]
        except RunFileError:  # written before fits recorded their palette
            painted = legacy_class_colors(C)
        if painted.shape == (C, 3):
            fit["background"] = recolor_map(fit["background"], fit["grid_class"], painted, class_colors(C))
        return fit

    def _outputs(self, epoch) -> dict[str, np.ndarray]:
        e = self._check(epoch)
        return self._cached(("out", e), lambda: load_npz(self.run.epoch_dir(e) / "outputs.npz",
                                                          ("predictions", "probabilities")))

    def _model(self, epoch) -> VisModel:
        e = self._check(epoch)

        return self._cached(("model", e), lambda: load_vismodel(self.run.fit_dir(e)))

    def head(self, epoch):
        """The classifier head of ``epoch``, rebuilt from stored weights (eval mode, CPU)."""
        e = self._check(epoch)
        return self._cached(("head", e), lambda: load_head(self.run.epoch_dir(e)))

    def embedding(self, epoch) -> np.ndarray:
        """(N, 2) float32 positions of every sample: where the widget shows them.

        The layout engine lays these out directly; ``project(epoch, features(epoch))`` lands close
        to them (metrics ``project_error/median`` and ``/p95``). For a parametric engine they are equal.
        """
        return self._fit(epoch)["embedding"]

    def boundary_embedding(self, epoch) -> np.ndarray:
        """(M, 2) float32 positions of the epoch's boundary samples."""
        return self._fit(epoch)["boundary_embedding"]

    def features(self, epoch) -> np.ndarray:
        """(N, D) float32 features recorded at ``epoch`` (read from the run directory)."""
        e = self._check(epoch)
        return load_npz(self.run.epoch_dir(e) / "features.npz", ("features",))["features"]

    def project(self, epoch, features) -> np.ndarray:
        """(M, D) features -> (M, 2) float32: where these features lie on this epoch's map.

        The encoder's output plus a correction interpolated (inverse squared distance) from the
        k = 15 recorded samples nearest in feature space: how far each of them is shown from where
        the encoder puts it (``dvi_widget.engine.extension``). A recorded sample's own features land
        where it is shown; new features land among their high-D neighbours. Metrics:
        ``project_error`` (recorded samples, ~0 by construction), ``project_error_encoder`` (the
        encoder alone) and ``project_error_heldout`` (each sample left out of the recorded set).
        A saved copy holds no features (see :meth:`save`): there the encoder alone answers.
        """
        model = self._model(epoch)
        h = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if h.ndim != 2 or h.shape[1] != model.dim:
            raise DVIError(f"features must have shape (M, {model.dim}) at epoch {epoch}, got {tuple(h.shape)}")
        recorded = self._recorded_features(epoch)
        shown = None if recorded is None else torch.from_numpy(self.embedding(epoch))
        return project_features(model, recorded, shown, h).numpy().astype(np.float32)

    def _recorded_features(self, epoch) -> torch.Tensor | None:
        """The epoch's recorded features for ``project``'s correction; None in a saved copy (no features)."""
        e = self._check(epoch)
        if not (self.run.epoch_dir(e) / "features.npz").exists():
            return None
        return self._cached(("features", e), lambda: torch.from_numpy(self.features(e)))

    def inverse(self, epoch, points) -> np.ndarray:
        """Decoder: (M, 2) points -> (M, D) float32 features."""
        model = self._model(epoch)
        z = torch.as_tensor(np.asarray(points, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != 2:
            raise DVIError(f"points must have shape (M, 2), got {tuple(z.shape)}")
        return batched(model.decode, z).numpy().astype(np.float32)

    def predictions(self, epoch) -> np.ndarray:
        """(N,) int64 classes the classifier predicted at ``epoch``."""
        return self._outputs(epoch)["predictions"]

    def probabilities(self, epoch) -> np.ndarray:
        """(N, C) float32 softmax of the head at ``epoch``."""
        return self._outputs(epoch)["probabilities"]

    def background(self, epoch) -> np.ndarray:
        """(H, W, 4) uint8 decision map; row 0 is the top of the extent (ymax)."""
        return self._fit(epoch)["background"]

    def background_extent(self, epoch) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) that ``background(epoch)`` covers."""
        return tuple(float(v) for v in self._fit(epoch)["extent"])

    def background_classes(self, epoch) -> np.ndarray:
        """(H, W) class shown by each pixel of the decision map."""
        return self._fit(epoch)["grid_class"]

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Union of every fitted epoch's map extent."""
        if not self._epochs:
            raise DVIError("no fitted epochs yet")
        ext = np.array([self.background_extent(e) for e in self._epochs])
        return (float(ext[:, 0].min()), float(ext[:, 1].max()), float(ext[:, 2].min()), float(ext[:, 3].max()))

    @property
    def metrics(self) -> dict[int, dict[str, float]]:
        """{epoch: {name: value}}, see README.md, "The engine" (the metrics)."""
        if self._metrics is None:
            self._metrics = {e: _check_metrics(self.run.fit_dir(e) / "metrics.json") for e in self._epochs}
        return {e: dict(m) for e, m in self._metrics.items()}

    @property
    def summary(self) -> dict[str, float]:
        """Run-level figures: ``stab_spearman`` over all consecutive epoch pairs."""
        hs, ls = [], []
        for e in self._epochs[1:]:
            f = self._fit(e)
            if len(f["high_step"]):
                hs.append(f["high_step"])
                ls.append(f["low_step"])
        return {"stab_spearman": stab_spearman(hs, ls), "epochs": float(len(self._epochs))}

    # ---- persistence and display -----------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Copy the run's results to ``path`` (a folder), without the bulky high-D features.

        ``Visualization.load(path)`` reopens it; project/inverse/maps keep working, only
        ``features()`` needs the original run (and ``project`` there is the encoder alone, without
        the correction that the recorded features give it). The run read may be an fsspec URL; ``path``
        is a local folder.
        """
        if is_url(path) or isinstance(path, RemotePath):
            raise DVIError(f"cannot save to {path}: Visualization.save writes a local folder; to keep a run "
                           f"on shared storage, record and fit it there (dvi.Recorder / dvi.fit take a URL)")
        dest = Path(path)
        if isinstance(self.path, Path) and dest.resolve() == self.path.resolve():
            return dest
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise DVIError(f"cannot save to {dest}: it is a file or a link; give a new folder")
        if dest.exists() and any(dest.iterdir()):
            raise DVIError(f"{dest} exists and is not empty; choose a new folder")
        if not dest.parent.is_dir():
            raise DVIError(f"cannot save to {dest}: the folder {dest.parent} does not exist")
        files = self._files_to_save()
        tmp = dest.with_name(f".{dest.name}.saving-{uuid.uuid4().hex[:8]}")
        try:
            for rel in files:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src_path = self.path / rel
                with (src_path.open("rb") if isinstance(src_path, RemotePath) else
                      open(src_path, "rb", opener=_no_follow)) as src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out)
            for e in self._epochs:   # the saved capture folders lack features.npz: list what they hold
                write_manifest(tmp / "epochs" / self.run.epoch_dir(e).name)
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        except OSError as e:
            raise DVIError(f"cannot save to {dest}: {e.strerror or e}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _files_to_save(self) -> list[Path]:
        """The run's files a saved copy needs (relative paths). Links are refused, never followed."""
        keep = [Path(n) for n in ("meta.json", "labels.npy", "split.npy", "thumbnails.npy", "fits/config.json")
                if (self.path / n).exists() or (self.path / n).is_symlink()]
        for e in self._epochs:
            for sub, folder in (("epochs", self.run.epoch_dir(e)), ("fits", self.run.fit_dir(e))):
                if folder.is_symlink():
                    raise DVIError(f"cannot save: {folder} is a symbolic link; a run's files are copied, "
                                   f"never followed through links")
                keep += [Path(sub) / folder.name / p.name for p in sorted(folder.iterdir())
                         if p.name != "features.npz"]
        for sub in ("epochs", "fits"):
            if (self.path / sub).is_symlink():
                raise DVIError(f"cannot save: {self.path / sub} is a symbolic link; a run's files are copied, "
                               f"never followed through links")
        for rel in keep:
            p = self.path / rel
            if p.is_symlink():
                raise DVIError(f"cannot save: {p} is a symbolic link (to {os.readlink(p)}); a run's files are "
                               f"copied, never followed through links. Replace the link with the file itself")
            if not p.is_file():
                raise DVIError(f"cannot save: {p} is not a regular file")
        return keep

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Visualization":
        """Open a saved Visualization (or a fitted run directory), local or an fsspec URL."""
        path = run_path(path)
        if not (path / "meta.json").exists():
            raise RunFileError(path / "meta.json", "not a saved dvi_widget Visualization (missing run file)")
        return cls(path)

    def show(self, **options):
        """The interactive widget for this run (same as ``dvi.DVIWidget(vis)``)."""
        from .widget.widget import DVIWidget
        return DVIWidget(self, **options)

    def __repr__(self) -> str:
        return (f"Visualization({str(self.path)!r}, N={self.n}, classes={len(self.classes)}, "
                f"epochs={self._epochs[:3]}{'...' if len(self._epochs) > 3 else ''})")

    # ---- export, pictures, reports (dvi_widget/export.py, pictures.py, report.py) ----
    def to_gif(self, path, **kw):
        """The epochs as an animated GIF, decision map behind the points (see ``dvi_widget.pictures``)."""
        from .outputs.pictures import to_gif
        return to_gif(self, path, **kw)

    def report(self, **kw):
        """A Bokeh layout of faithfulness and accuracy over epochs (see ``dvi_widget.report``)."""
        from .outputs.report import report
        return report(self, **kw)

    def export_html(self, path, **kw):
        """One self-contained offline HTML page of the widget (see ``dvi_widget.export``)."""
        from .outputs.export import export_html
        return export_html(self, path, **kw)

    # ---- analyses (dvi_widget/analysis: training dynamics, neighbours, probes) ----
    def dynamics(self, *, upto: int | None = None, epochs=None, margin: str = "auto", pandas: bool | None = None,
                 progress: bool = True):
        """Per-sample training dynamics: forgetting events, first-learned epoch, never-learned,
        cartography (confidence, variability, correctness), area under the margin, prediction flips.

        A pandas DataFrame (a dict of arrays without pandas); see ``dvi_widget.analysis.dynamics``.
        """
        from .analysis.dynamics import dynamics
        return dynamics(self, upto=upto, epochs=epochs, margin=margin, pandas=pandas, progress=progress)

    def neighbours(self, epoch: int, i: int, k: int = 15, *, pandas: bool | None = None):
        """Sample ``i``'s k nearest neighbours in feature space at ``epoch``, with their distances and
        whether each is also a 2-D neighbour (see ``dvi_widget.analysis.neighbours``)."""
        from .analysis.neighbours import neighbours
        return neighbours(self, epoch, i, k, pandas=pandas)

    def probe(self, epoch: int, xy, k: int = 5) -> dict:
        """What the map decodes at 2-D location(s) ``xy``: class probabilities, nearest samples and the
        decoded point's distance to the data (see ``dvi_widget.analysis.probe``)."""
        from .analysis.probe import probe
        return probe(self, epoch, xy, k)
