"""Recording: capture each epoch's features, head, predictions and boundary samples into a run directory."""
from __future__ import annotations

import os
import re
import sys
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from . import boundary as bnd
from ..errors import DVIError
from ..progress import Progress, track
from .features import Inputs, as_matrix, check_finite, extract, module_device, resolve_features
from ..store.heads import describe_head, save_head
from ..store import lock as writer_lock
from ..store.fs import RemotePath, run_path
from ..store.rundir import SPLITS, RunDir, check_clearable, clear_run, is_our_run, label_hash, save_npz, write_json
from .thumbnails import make_thumbnails


def _check_labels(labels, classes) -> tuple[np.ndarray, list[str]]:
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1:
        raise DVIError(f"labels must be a 1-D array (N,), got shape {labels.shape}")
    if labels.size == 0:
        raise DVIError("labels are empty: there is no data to record")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise DVIError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if classes is None:
        classes = [str(i) for i in range(int(labels.max()) + 1)]
    classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise DVIError(f"a classifier needs at least 2 classes, got classes={classes}")
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        raise DVIError(f"labels outside range(len(classes)) = range({len(classes)}): "
                       f"values {sorted(set(labels[bad].tolist()))[:10]} at {np.flatnonzero(bad)[:5].tolist()}")
    if len(np.unique(labels)) < 2:
        raise DVIError(f"labels contain a single class ({classes[labels[0]]!r}); "
                       f"a decision boundary needs at least two")
    return labels, classes


def _check_split(split, n: int) -> np.ndarray:
    if split is None:
        return np.zeros(n, dtype=np.uint8)
    split = np.asarray(split)
    if split.shape != (n,):
        raise DVIError(f"split must have shape ({n},) like labels, got {split.shape}")
    if split.dtype == bool:
        raise DVIError('split must hold "train"/"test" strings, not booleans')
    unknown = sorted(set(split.astype(str).tolist()) - set(SPLITS))
    if unknown:
        raise DVIError(f'split values must be "train" or "test", got {unknown[:5]}')
    codes = (split.astype(str) == "test").astype(np.uint8)
    if codes.all():
        raise DVIError('split has no "train" samples; boundary samples are made from training samples')
    return codes


class Recorder:
    """Record a training run, one ``capture()`` per epoch, into a run directory.

    Recording never changes the user's training: module modes are restored, a private
    random generator is used, and everything runs under ``torch.no_grad()``.

    A Recorder is the run's one writer from creation to ``close()`` (or the end of its
    ``with`` block): another process's Recorder or ``dvi.fit`` on the same run gets a
    clear error naming it, while readers (widgets, ``dvi.Visualization``) work as usual.
    A new Recorder on the same path in this process (a re-run notebook cell) takes over
    and closes the old one.

    ``overwrite=True`` empties the folder first, only when it is provably a dvi_widget
    run (its ``meta.json`` carries the run format marker and it holds nothing a run does
    not); it prints what it removed. ``progress=False`` silences every recording stage.
    ``boundary_cap``: most boundary samples per epoch; ``batch_size``: inputs per forward
    pass; ``seed``: the private generator's seed; ``fit_options``: what ``show()``'s live
    fits pass to ``dvi.fit``.

    ``path`` is a local folder or an fsspec URL (``memory://``, ``file://``, ``s3://``,
    ``gcs://``... with the file system's fsspec driver installed); see README.md, "Runs on
    shared storage", for what is atomic where. Checkpoint files may be URLs too.
    """

    def __init__(self, path: str | os.PathLike, inputs=None, labels=None, classes: Sequence[str] | None = None,
                 images: np.ndarray | None = None, split: Sequence[str] | None = None, overwrite: bool = False,
                 *, boundary_cap: int = 5000, batch_size: int = 512, seed: int = 0, fit_options: dict | None = None,
                 progress: bool = True):
        if labels is None:
            raise DVIError("labels are required: Recorder(path, inputs=x, labels=y, classes=names)")
        labels, classes = _check_labels(labels, classes)
        n = len(labels)
        self.inputs = None
        if inputs is not None:
            self.inputs = Inputs(inputs)
            if self.inputs.n != n:
                raise DVIError(f"inputs and labels have different lengths: {self.inputs.n} inputs, {n} labels")
            if n == 0:
                raise DVIError("inputs are empty: there is no data to record")
        split_codes = _check_split(split, n)
        thumbs = None
        if images is not None:
            thumbs = np.asarray(images)
            if thumbs.dtype != np.uint8 or thumbs.ndim not in (3, 4) or thumbs.shape[0] != n or \
                    (thumbs.ndim == 4 and thumbs.shape[3] != 3):
                raise DVIError(f"images must be uint8 thumbnails (N, h, w) or (N, h, w, 3) with N={n}, "
                               f"got {thumbs.dtype} {thumbs.shape}")
        self.path = run_path(path)   # a local folder or an fsspec URL (a bad scheme is named here)
        self.labels, self.classes, self.batch_size, self.seed = labels, classes, batch_size, seed
        self.boundary_cap = boundary_cap
        self.fit_options = dict(fit_options or {})
        self.split_codes = split_codes
        self._closed = False
        self._live: list = []
        self._live_vis = None

        self.progress = bool(progress)
        self._superseded = False
        self._hold = self._open(overwrite, thumbs)

    def _open(self, overwrite: bool, thumbs) -> writer_lock.WriterHold:
        """Take the run's writer lock, then resume, start afresh (overwrite) or create the run."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise DVIError(f"cannot record to {path}: it is a file, not a folder")
        is_run = (path / "meta.json").exists()
        if path.exists() and not is_run and any(p.name not in (writer_lock.LOCK_NAME, writer_lock.HOLDER_NAME)
                                                 for p in path.iterdir()):
            raise DVIError(f"{path} exists and is not a dvi_widget run directory; "
                           f"choose another path (overwrite=True only replaces run directories)")
        if is_run and overwrite:
            check_clearable(path)   # before the lock: nothing is written into a folder that is not a run
        if is_run and not is_our_run(path):
            raise DVIError(f"{path} exists and is not a dvi_widget run directory (its meta.json is not a run's); "
                           f"choose another path (overwrite=True only replaces run directories)")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DVIError(f"cannot create the run directory {path}: {e.strerror or e}") from None
        me = weakref.ref(self)

        def superseded() -> None:
            rec = me()
            if rec is not None:
                rec._closed, rec._superseded = True, True
                rec._hold.release()
        hold = writer_lock.acquire(path, "Recorder", exclusive_owner=self, on_superseded=superseded)
        try:
            if is_run and not overwrite:
                self.run = RunDir(path)
                self._check_resume()
            else:
                if is_run:
                    before = RunDir(path)
                    what = f"{len(before.recorded_epochs())} recorded and {len(before.fitted_epochs())} fitted epochs"
                    removed = clear_run(path)
                    print(f"dvi_widget: overwrite=True: removed the run at {path} ({what}; entries {removed})",
                          file=sys.stderr, flush=True)
                if thumbs is None and self.inputs is not None:
                    thumbs = make_thumbnails(self.inputs)
                self.run = RunDir.create(path, self.labels, self.classes, self.split_codes, thumbs)
        except BaseException:
            hold.release()
            raise
        weakref.finalize(self, hold.release)
        return hold

    def _check_resume(self) -> None:
        meta = self.run.meta
        if meta["n"] != len(self.labels):
            raise DVIError(f"run directory {self.path} was recorded with N={meta['n']} samples, "
                           f"not {len(self.labels)}; use another path or overwrite=True")
        if meta["classes"] != self.classes:
            raise DVIError(f"run directory {self.path} was recorded with classes {meta['classes']}, "
                           f"not {self.classes}; use another path or overwrite=True")
        if meta["label_hash"] != label_hash(self.labels):
            raise DVIError(f"run directory {self.path} was recorded with other labels "
                           f"(label hash differs); use another path or overwrite=True")

    # ---- public API -------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """Recorded epoch numbers, ascending."""
        return self.run.recorded_epochs()

    def capture(self, model: nn.Module | None = None, features=None, head: nn.Module | None = None,
                epoch: int | None = None, *, replace: bool = False) -> int:
        """Record one epoch; returns its epoch number (``None``: the previous one + 1, from 1).

        Recording an epoch number that is already recorded is an error unless
        ``replace=True`` (then the new capture replaces it, and its fit is redone by the
        next ``dvi.fit``).
        """
        self._check_open()
        epoch = self._next_epoch(epoch)
        if not replace and epoch in self.epochs:
            raise DVIError(f"epoch {epoch} is already recorded in {self.path}; pass replace=True to record it "
                           f"again, or another epoch number (recorded: {self.epochs[-5:]} ...)")
        self._record(model, features, head, epoch)
        self._update_live()
        return epoch

    def _record(self, model, features, head, epoch: int) -> None:
        """Compute one epoch's capture and write its folder atomically (also run by Ray tasks)."""
        if head is None:
            raise DVIError("capture needs head=, the module that maps features to logits")
        description, head_weights = describe_head(head)
        modules = [m for m in (model, head, features) if isinstance(m, nn.Module)]
        modes = [(m, m.training) for top in modules for m in top.modules()]
        try:
            for top in modules:
                top.eval()
            with torch.no_grad():
                feats, bfeats = self._capture(model, features, head, epoch)
        finally:
            for m, mode in modes:
                m.training = mode
        with torch.no_grad():
            logits = self._head_cpu(head, feats)
        probs = torch.softmax(logits.float(), dim=1)
        with self.run.write_epoch(epoch) as tmp:
            save_npz(tmp / "features.npz", features=feats.numpy(), boundary=bfeats.numpy())
            save_npz(tmp / "outputs.npz", predictions=logits.argmax(1).numpy().astype(np.int64),
                     probabilities=probs.numpy().astype(np.float32))
            save_head(tmp, description, head_weights)
            write_json(tmp / "capture.json", {"id": uuid.uuid4().hex, "epoch": epoch})

    def capture_checkpoints(self, build_model: Callable[[], nn.Module], files: Iterable[str | os.PathLike],
                            features, head, epochs: Sequence[int] | None = None, *,
                            replace: bool = False, executor="local", ray_address: str | None = None) -> list[int]:
        """Record saved checkpoints. ``features``/``head``: layer names, or functions of the built model.

        ``epochs=None`` reads the epoch from the last number in each file name when every
        name has a distinct one, else numbers them on from the last recorded epoch.
        An epoch already recorded is an error unless ``replace=True``; all are checked
        before the first checkpoint is read.

        ``executor="ray"`` (``pip install 'dvi_widget[ray]'``) captures the checkpoints in parallel
        as Ray tasks, each on a GPU when the cluster has them; ``ray_address`` (or a
        ``dvi.RayExecutor``) chooses the cluster, as for ``dvi.fit``. ``build_model``, ``features``
        and ``head`` are then shipped to the workers (cloudpickle: functions defined in a notebook
        travel by value), and the inputs once through Ray's object store. Every worker must reach
        the checkpoint files and the run directory at the same paths. The run is the same as a
        local capture's (same device), each epoch written atomically; this Recorder keeps the run's
        writer lock meanwhile.
        """
        from ..cluster import resolve_ray
        self._check_open()
        ray_opts = resolve_ray(executor, ray_address)
        files = [run_path(f) if isinstance(f, str) else f for f in files]   # local paths or fsspec URLs
        files = [f if isinstance(f, RemotePath) else Path(f) for f in files]
        if not files:
            raise DVIError("capture_checkpoints got no checkpoint files")
        for f in files:
            if not f.exists():
                raise DVIError(f"checkpoint file not found: {f}")
        if epochs is None:
            nums = [re.findall(r"\d+", f.stem) for f in files]
            if all(nums) and len({int(n[-1]) for n in nums}) == len(files):
                epochs = [int(n[-1]) for n in nums]
            else:
                start = (self.epochs[-1] if self.epochs else 0) + 1
                epochs = list(range(start, start + len(files)))
        if len(epochs) != len(files):
            raise DVIError(f"got {len(files)} checkpoint files but {len(epochs)} epochs")
        epochs = [self._next_epoch(e) for e in epochs]
        if len(set(epochs)) != len(epochs):
            raise DVIError(f"epochs repeat a number: {epochs}")
        taken = sorted(set(epochs) & set(self.epochs))
        if taken and not replace:
            raise DVIError(f"epochs {taken} are already recorded in {self.path}; pass replace=True to record "
                           f"them again")
        if ray_opts is not None:
            ray_opts.check_reachable(self.path, *files)
            return self._capture_checkpoints_ray(ray_opts, build_model, files, features, head, epochs)
        done = []
        for f, e in zip(track(files, "checkpoints", unit="checkpoint", enabled=self.progress), epochs):
            model, feat, hd = _load_checkpoint(build_model, f, features, head)
            done.append(self.capture(model, features=feat, head=hd, epoch=e, replace=replace))
        return done

    def _capture_checkpoints_ray(self, ray_opts, build_model, files, features, head, epochs) -> list[int]:
        """Each checkpoint as a Ray task that captures it and writes its epoch folder (see capture_checkpoints)."""
        from ..cluster import run_tasks
        ray = ray_opts.connect()
        opts = ray_opts.task_options(ray, "auto", None)
        job = ray.put(_CaptureJob.of(self))
        build = ray.put(build_model)
        calls = [(job, build, ray_opts.task_path(f), features, head, e, opts["num_gpus"] > 0, opts["num_cpus"])
                 for f, e in zip(files, epochs)]
        done = run_tasks(ray_opts, _capture_checkpoint_task, calls, opts, "checkpoints (ray)", "checkpoint",
                         self.progress)
        self._update_live()
        return done

    def show(self, **widget_options):
        """A live widget: every later ``capture()`` is fitted and appears in it."""
        from ..engine.fitting import fit
        from ..results import Visualization
        from ..widget.widget import DVIWidget
        if self._live_vis is None:
            self._live_vis = fit(self.path, **self._fit_kw()) if self.epochs else Visualization(self.path)
        w = DVIWidget(self._live_vis, live=True, **widget_options)
        self._live.append(w)
        return w

    def close(self) -> None:
        """Stop recording and release the run's writer lock (idempotent)."""
        self._closed = True
        hold = getattr(self, "_hold", None)
        if hold is not None:
            hold.release()

    def _check_open(self) -> None:
        if self._superseded:
            raise DVIError(f"this Recorder was closed because a newer Recorder opened {self.path} in this "
                           f"process; record with the newer one")
        if self._closed:
            raise DVIError("this Recorder is closed; open a new dvi.Recorder on the same path to resume")

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- internals ---------------------------------------------------------
    def _next_epoch(self, epoch) -> int:
        if epoch is None:
            rec = self.epochs
            return (rec[-1] + 1) if rec else 1
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise DVIError(f"epoch must be a non-negative int epoch number, got {epoch!r}")
        return int(epoch)

    @staticmethod
    def _head_cpu(head: nn.Module, feats: torch.Tensor) -> torch.Tensor:
        device = module_device(head)
        out = []
        for s in range(0, len(feats), 4096):
            out.append(head(feats[s:s + 4096].to(device)).float().cpu())
        return torch.cat(out)

    def _check_head(self, head: nn.Module, h: torch.Tensor) -> None:
        try:
            z = head(h[:2].to(module_device(head)))
        except Exception as e:  # the user's module raises whatever it raises
            raise DVIError(f"head does not accept the features (shape {tuple(h.shape)}): {e}") from None
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != len(self.classes):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise DVIError(f"head must return logits (B, {len(self.classes)}) for {len(self.classes)} classes, "
                           f"got {shape}")

    def _capture(self, model, features, head, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, epoch])
        train = np.flatnonzero(self.split_codes == 0)
        count = bnd.boundary_count(len(train), self.boundary_cap)
        if isinstance(features, (np.ndarray, torch.Tensor)) and torch.as_tensor(features).ndim == 2:
            feats = torch.as_tensor(np.asarray(features.cpu() if isinstance(features, torch.Tensor) else features),
                                    dtype=torch.float32)
            if feats.shape[0] != n:
                raise DVIError(f"features array has {feats.shape[0]} rows, the run has N={n} samples")
            if feats.shape[0] == 0 or feats.shape[1] == 0:
                raise DVIError(f"features array is empty: shape {tuple(feats.shape)}")
            check_finite(feats)
            self._check_head(head, feats)
            dev = module_device(head)

            def mix(pairs):
                h1, h2 = feats[pairs[:, 0]].to(dev), feats[pairs[:, 1]].to(dev)

                def f(rows, lam):
                    lam = lam.to(dev)[:, None]
                    h = lam * h1[rows] + (1 - lam) * h2[rows]
                    return h.float().cpu(), head(h).float().cpu()
                return f
        else:
            if self.inputs is None:
                raise DVIError("this Recorder has no inputs: give features as an (N, D) array, "
                               "or create the Recorder with inputs=")
            if features is None:
                raise DVIError("capture needs features=: a callable x -> (B, D), a layer name, or an (N, D) array")
            fn, cleanup = resolve_features(model, features)
            try:
                dev = module_device(model, features, head)
                first = as_matrix(fn(self.inputs.get([0, min(1, n - 1)]).to(dev)), min(2, n))
                self._check_head(head, first.float())
                with Progress(n, f"epoch {epoch}: features", unit="sample", enabled=self.progress) as bar:
                    feats = extract(fn, self.inputs, dev, self.batch_size, bar)
                check_finite(feats)

                def mix(pairs):
                    def f(rows, lam):
                        hs, zs = [], []
                        for s in range(0, len(rows), self.batch_size):
                            r = rows[s:s + self.batch_size]
                            x1 = self.inputs.get(pairs[r, 0]).to(dev).float()
                            x2 = self.inputs.get(pairs[r, 1]).to(dev).float()
                            lm = lam[s:s + self.batch_size].to(dev).view(-1, *([1] * (x1.ndim - 1)))
                            x = lm * x1 + (1 - lm) * x2   # mixes are float even for uint8 inputs
                            h = as_matrix(fn(x), len(r)).float()
                            hs.append(h.cpu())
                            zs.append(head(h).float().cpu())
                        return torch.cat(hs), torch.cat(zs)
                    return f
                bfeats = self._boundary(feats, head, mix, train, count, rng)
            finally:
                cleanup()
            return feats, bfeats
        return feats, self._boundary(feats, head, mix, train, count, rng)

    def _boundary(self, feats, head, mix, train, count, rng) -> torch.Tensor:
        logits = self._head_cpu(head, feats)
        probs = torch.softmax(logits, 1).numpy()
        preds = logits.argmax(1).numpy()
        pairs = bnd.choose_pairs(probs, preds, train, int(count * 1.5) + 8, rng)
        if len(pairs) == 0:
            return torch.zeros((0, feats.shape[1]), dtype=torch.float32)
        c1 = torch.from_numpy(preds[pairs[:, 0]])
        c2 = torch.from_numpy(preds[pairs[:, 1]])
        rows, _, bfeats = bnd.bisect(mix(pairs), pairs, c1, c2)
        order = np.argsort(rows, kind="stable")[:count]   # keep the earliest pairs: deterministic
        return bfeats[torch.from_numpy(order)].float() if len(order) else torch.zeros((0, feats.shape[1]))

    def _fit_kw(self) -> dict:
        return {"progress": self.progress, **self.fit_options}

    def _update_live(self) -> None:
        if not self._live:
            return
        from ..engine.fitting import fit
        fit(self.path, **self._fit_kw())
        self._live_vis.reload()
        for w in self._live:
            w.refresh()


def _load_checkpoint(build_model: Callable[[], nn.Module], f, features, head):
    """Build the model, load checkpoint ``f`` into it; -> (model, features callable or name, head module)."""
    model = build_model()
    try:
        if isinstance(f, RemotePath):
            with f.open("rb") as fh:
                state = torch.load(fh, map_location="cpu", weights_only=True)
        else:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise DVIError(f"cannot load checkpoint {f}: {exc}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    model.load_state_dict(state)
    feat = features if isinstance(features, str) else features(model)
    hd = model.get_submodule(head) if isinstance(head, str) else head(model)
    return model, feat, hd


class _CaptureJob:
    """What a Ray task needs of a Recorder to capture one epoch: its data and settings, no lock.

    It runs the Recorder's own capture code (the methods below are the Recorder's), so a capture
    on a worker writes exactly what ``Recorder.capture`` writes.
    """
    _record = Recorder._record
    _capture = Recorder._capture
    _boundary = Recorder._boundary
    _head_cpu = staticmethod(Recorder._head_cpu)
    _check_head = Recorder._check_head

    @classmethod
    def of(cls, rec: Recorder) -> "_CaptureJob":
        job = cls()
        for name in ("run", "inputs", "labels", "classes", "split_codes", "seed", "boundary_cap", "batch_size"):
            setattr(job, name, getattr(rec, name))
        job.progress = False
        return job


def _capture_checkpoint_task(job: _CaptureJob, build_model, f: str, features, head, epoch: int, gpu: bool,
                             threads: float) -> int:
    """Ray task: capture checkpoint ``f`` as epoch ``epoch`` into the run directory; -> the epoch."""
    torch.set_num_threads(max(1, int(threads)))
    model, feat, hd = _load_checkpoint(build_model, f, features, head)
    if gpu and torch.cuda.is_available():
        model.to("cuda")
    job._record(model, feat, hd, epoch)
    return epoch
