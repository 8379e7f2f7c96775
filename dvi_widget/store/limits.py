"""Size checks made before anything is allocated: stored array headers, zip members, declared shapes.

A run file's sizes are read from the file itself (the ``.npy`` header, each ``.npz``
member's header and zip entry) and checked before an array is read:

- the array a header declares must fit in the bytes actually stored (a truncated or
  edited header cannot make numpy allocate more than the file holds);
- a zip member may not expand beyond ``MAX_RATIO`` times its compressed size (dvi_widget
  writes members uncompressed, ratio 1; a zip bomb is refused before it is opened);
- no file may declare more than :func:`byte_cap` bytes: at least ``MIN_CAP`` and otherwise
  ``BYTES_PER_SAMPLE`` per recorded sample, a run's largest legitimate file (its
  features) being N rows of at most 16,384 float32 values;
- modules described in JSON (a head, a vis model) are built on torch's ``meta`` device
  first, and the shapes they would allocate are compared with the stored weights'
  headers before any memory is taken (:func:`materialize`).
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import RunFileError

MIN_CAP = 256 * 2 ** 20          # 256 MiB: every small run may hold files this large
BYTES_PER_SAMPLE = 64 * 2 ** 10  # 64 KiB per recorded sample (16,384 float32 features)
MAX_RATIO = 64                   # a compressed member may expand at most 64x


def byte_cap(n_samples: int | None) -> int:
    """The most bytes one run file may declare, for a run of ``n_samples`` samples."""
    return max(MIN_CAP, int(n_samples or 0) * BYTES_PER_SAMPLE)


def _read_header(f, path: Path, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of the ``.npy`` stream ``f``; RunFileError when unreadable."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=10000)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=10000)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, struct.error, SyntaxError, TypeError) as e:
        raise RunFileError(path, f"damaged run file ({where}: unreadable array header: {_plain(e)})") from None
    if dtype.hasobject:
        raise RunFileError(path, f"{where} holds Python objects; dvi_widget never loads those")
    if any((not isinstance(s, int)) or s < 0 for s in shape):
        raise RunFileError(path, f"damaged run file ({where}: bad shape {shape})")
    return tuple(shape), dtype, f.tell()


def _plain(e: BaseException) -> str:
    """An exception's message without numpy's advice to load the file unsafely."""
    msg = str(e)
    if "allow_pickle" in msg or "pickle" in msg.lower():
        return "the file holds pickled Python objects, which dvi_widget never loads"
    return msg


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * int(dtype.itemsize)


def npy_header(path: Path, cap: int) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file, checked against its size and ``cap`` without reading the data."""
    size = path.stat().st_size
    with path.open("rb") as f:   # a Path or a store.fs.RemotePath (an fsspec file)
        shape, dtype, offset = _read_header(f, path, path.name)
    need = nbytes(shape, dtype)
    if need > cap:
        raise RunFileError(path, f"array of shape {shape} ({need:,} bytes) exceeds this run's limit of {cap:,} bytes")
    if offset + need > size:
        raise RunFileError(path, f"damaged run file (declares {need:,} bytes of data, holds {size - offset:,})")
    return shape, dtype


def npz_headers(path: Path, cap: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of a ``.npz``, checked against each zip entry and ``cap``.

    Reads the zip directory and each member's first bytes only; nothing is decompressed in full.
    """
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    try:
        with path.open("rb") as raw, zipfile.ZipFile(raw) as z:   # Path or RemotePath: only the directory and headers are read
            for info in z.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if info.file_size > max(info.compress_size * MAX_RATIO, 2 ** 20):
                    raise RunFileError(path, f"member {info.filename} expands {info.compress_size:,} bytes to "
                                             f"{info.file_size:,}; refused (zip bomb?)")
                with z.open(info) as f:
                    shape, dtype, offset = _read_header(f, path, info.filename)
                need = nbytes(shape, dtype)
                total += need
                if total > cap:
                    raise RunFileError(path, f"arrays declare {total:,} bytes, over this run's limit of {cap:,} bytes")
                if offset + need != info.file_size:
                    raise RunFileError(path, f"damaged run file (member {info.filename} declares {need:,} bytes "
                                             f"of data, holds {info.file_size - offset:,})")
                out[name] = (shape, dtype)
    except RunFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError, struct.error, KeyError, zlib.error) as e:
        raise RunFileError(path, f"damaged run file ({type(e).__name__}: {_plain(e)})") from None
    return out


def materialize(build: Callable[[], "object"], shapes: dict[str, tuple[int, ...]], path: Path, what: str):
    """Build a torch module from a JSON description without trusting its sizes.

    ``build()`` is run on torch's ``meta`` device (no memory); the shapes of its state are
    compared with ``shapes`` (read from the stored weights' headers). Only when every
    name and shape matches is the module given real (uninitialised) CPU memory, which the
    caller then fills with ``load_state_dict``. Any mismatch is a RunFileError on ``path``.
    """
    import torch
    try:
        with torch.device("meta"):
            module = build()
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, AttributeError) as e:
        raise RunFileError(path, f"damaged {what} description ({type(e).__name__}: {e})") from None
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    have = {k: tuple(v) for k, v in shapes.items()}
    if want != have:
        diff = sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have.get(k)]
        shown = {k: (want.get(k), have.get(k)) for k in diff[:4]}
        raise RunFileError(path, f"{what} description does not match its stored weights "
                                 f"(name: (described, stored) {shown})")
    return module.to_empty(device="cpu")


def check_file(path: Path) -> None:
    """A run file must be a regular file (a link to one is followed), never a FIFO or a device."""
    if not path.exists():
        raise RunFileError(path, "missing run file")
    if not path.is_file():
        raise RunFileError(path, "not a regular file")


def dry_run(build: Callable[[], "object"], path: Path, what: str):
    """Run a loader on torch's ``meta`` device first, then for real.

    For loaders that build a module from a JSON description and then load stored weights
    (``VisModel.from_arrays(description, arrays)``): on the ``meta`` device the module costs
    no memory, and ``load_state_dict`` still refuses weights of another shape, so a
    description that declares sizes the stored weights do not have is refused before any
    allocation. The weights themselves were already size-checked when they were read.
    Any failure is a RunFileError on ``path``.
    """
    import warnings

    import torch
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "copying into a meta parameter is a no-op": the point here
            build()
        return build()
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, AttributeError, IndexError) as e:
        raise RunFileError(path, f"damaged {what} ({type(e).__name__}: {e})") from None


__all__ = ["byte_cap", "npy_header", "npz_headers", "materialize", "dry_run", "check_file", "MIN_CAP",
           "BYTES_PER_SAMPLE", "MAX_RATIO"]
