"""The artifact store: a local folder by default, any fsspec filesystem (S3, GCS...) by URL.

Layout: ``<store>/<model-name>/<version>/`` holding the head files and its report, plus
``<store>/_uploads/<job-id>.csv`` for uploaded training data (so a worker on another machine
can read it). A version folder is complete only once its ``_COMPLETE`` marker exists: it is
written last, so a reader never loads a half-written head.
"""

from __future__ import annotations

import re
from typing import Any

import fsspec

from shared.contracts.training import MODEL_NAME

MARKER = "_COMPLETE"


class ArtifactError(RuntimeError):
    """An artifact is missing or incomplete."""


class ArtifactStore:
    def __init__(self, url: str, **storage_options: Any) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")
        self.url = self.fs.unstrip_protocol(self.root)

    def _path(self, uri: str) -> str:
        """The store path of ``uri``; :class:`ArtifactError` unless it lies inside the store
        (below its root, with no ``.``, ``..`` or empty part)."""
        strip = self.fs._strip_protocol  # noqa: SLF001 (fsspec's documented helper)
        path = strip(uri).rstrip("/")
        parts = path[len(self.root) + 1:].split("/")
        if not path.startswith(self.root + "/") or any(p in ("", ".", "..") for p in parts):
            raise ArtifactError(f"artifact {uri} is outside the store {self.url}")
        return path

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` at ``key``, a relative path such as ``_uploads/<job>.csv``."""
        if key.startswith("/") or not all(re.fullmatch(r"[\w.-]+", p) and p.strip(".")
                                          for p in key.split("/")):
            raise ArtifactError(f"refusing to write {key!r}: keys are relative paths of "
                                "letters, digits, '_', '-' and '.' that stay inside the store")
        path = f"{self.root}/{key}"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data)
        return self.fs.unstrip_protocol(path)

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {uri} is missing from the store") from None

    def delete(self, uri: str) -> None:
        """Delete a file or a folder (recursively) inside the store; never the store itself."""
        self.fs.rm(self._path(uri), recursive=True)

    def write_version(self, name: str, version: int, files: dict[str, bytes]) -> str:
        """Write a version folder (marker last); returns its URI."""
        if not re.fullmatch(MODEL_NAME, name) or not all(re.fullmatch(r"[\w.-]+", f)
                                                          and ".." not in f for f in files):
            raise ArtifactError(f"refusing to write {name!r}: model and file names must match "
                                f"{MODEL_NAME} and stay inside the store")
        folder = f"{self.root}/{name}/{int(version)}"
        self.fs.makedirs(folder, exist_ok=True)
        for filename, data in files.items():
            self.fs.pipe_file(f"{folder}/{filename}", data)
        self.fs.pipe_file(f"{folder}/{MARKER}", b"")
        return self.fs.unstrip_protocol(folder)

    def read_version(self, uri: str, names: tuple[str, ...] | None = None) -> dict[str, bytes]:
        folder = self._path(uri)
        if not self.fs.exists(f"{folder}/{MARKER}"):
            raise ArtifactError(f"artifact {uri} is missing or incomplete")
        wanted = [f"{folder}/{n}" for n in names] if names else [
            p for p in self.fs.ls(folder, detail=False) if not p.endswith(MARKER)]
        out = {}
        for path in wanted:
            if self.fs.exists(path):
                out[path.rsplit("/", 1)[-1]] = bytes(self.fs.cat_file(path))
        return out
