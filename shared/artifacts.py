"""The artifact store: a local folder by default, any fsspec filesystem (S3, GCS...) by URL.

Layout: ``<store>/<model-name>/<version>/`` holding the head files and its report, plus
``<store>/_uploads/<job-id>.csv`` for uploaded training data (so a worker on another machine
can read it). A version folder is complete only once its ``_COMPLETE`` marker exists: it is
written last, so a reader never loads a half-written head. The marker lists the files the
version was written with, so a file lost since (a damaged store) is an error, while a file the
version never had (``booster.ubj`` of a logistic-regression head, ``report.json`` of an old
version) is simply not returned: which files a head needs depends on its kind.
"""

from __future__ import annotations

import json
import re
from typing import Any

import fsspec

from shared.contracts.training import MODEL_NAME

MARKER = "_COMPLETE"


class ArtifactError(RuntimeError):
    """An artifact is missing, incomplete or damaged, or its path leaves the store."""


class ArtifactStore:
    def __init__(self, url: str, **storage_options: Any) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")
        self.url = self.fs.unstrip_protocol(self.root)

    def _path(self, uri: str) -> str:
        """The store path of ``uri``; :class:`ArtifactError` unless it lies inside the store
        (below its root, with no ``.``, ``..`` or empty part)."""
        path = str(self.fs._strip_protocol(uri)).rstrip("/")
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
        return str(self.fs.unstrip_protocol(path))

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
        """Write a version folder (the marker, listing the files, last); returns its URI."""
        if not re.fullmatch(MODEL_NAME, name) or not all(re.fullmatch(r"[\w.-]+", f)
                                                          and ".." not in f for f in files):
            raise ArtifactError(f"refusing to write {name!r}: model and file names must match "
                                f"{MODEL_NAME} and stay inside the store")
        folder = f"{self.root}/{name}/{int(version)}"
        self.fs.makedirs(folder, exist_ok=True)
        for filename, data in files.items():
            self.fs.pipe_file(f"{folder}/{filename}", data)
        self.fs.pipe_file(f"{folder}/{MARKER}", json.dumps(sorted(files)).encode())
        return str(self.fs.unstrip_protocol(folder))

    def read_version(self, uri: str, names: tuple[str, ...] | None = None) -> dict[str, bytes]:
        """The files ``names`` (all by default) of a complete version, among those it was
        written with; :class:`ArtifactError` if it is incomplete or lost one of them."""
        folder = self._path(uri)
        written = self._written(uri, folder)
        out = {}
        for name in written if names is None else [n for n in names if n in written]:
            try:
                out[name] = bytes(self.fs.cat_file(f"{folder}/{name}"))
            except FileNotFoundError:
                raise ArtifactError(f"artifact {uri} is damaged: {name} is missing") from None
        return out

    def _written(self, uri: str, folder: str) -> list[str]:
        """The files the version was written with, from its marker (a marker written before
        it listed them is empty: then the files in the folder)."""
        try:
            marker = bytes(self.fs.cat_file(f"{folder}/{MARKER}"))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {uri} is missing or incomplete") from None
        if marker:
            return [str(name) for name in json.loads(marker)]
        return [str(p).rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)
                if not str(p).endswith(MARKER)]
