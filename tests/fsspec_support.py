"""A file system for the shared-storage tests that lives on disk (so several processes share it)
but behaves like an object store for dvi_widget: no atomic rename (a move is a copy and a
delete), files visible while they are being written. Imported by name (see engine_support)."""
from __future__ import annotations

import fsspec
from fsspec.implementations.local import LocalFileSystem


class ObjectStoreOnDisk(LocalFileSystem):
    """``objdisk:///tmp/x``: fsspec's local file system with a copy-and-delete move."""

    protocol = ("objdisk",)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith("objdisk://"):
            path = path[len("objdisk://"):]
        return super()._strip_protocol(path)

    def unstrip_protocol(self, name: str) -> str:
        return "objdisk://" + self._strip_protocol(name)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        self.copy(path1, path2, recursive=recursive)
        self.rm(path1, recursive=recursive)

    rename = move = mv


fsspec.register_implementation("objdisk", ObjectStoreOnDisk, clobber=True)
