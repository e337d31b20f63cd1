"""Blob stores: where the server keeps profile bodies (gzipped wire-format JSON).

Only the local folder exists in this version; an S3 store will implement the same
:class:`BlobStore` protocol.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from greenflame.analyzer.errors import UserError

from .private_files import private_dir

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class BlobStore(Protocol):
    """Stores opaque bytes under keys such as ``profiles/ab/abcdef.json.gz``."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError if there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""


class FolderBlobStore:
    """Blobs as files under one folder, written atomically (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = private_dir(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; readers never see a half-written file."""
        path = self._path(key)
        private_dir(path.parent)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError if there are none."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        self._path(key).unlink(missing_ok=True)


def open_blob_store(url: str) -> BlobStore:
    """A blob store for ``url``: a folder path or a ``file://`` URL."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else url
        if not path:
            raise UserError(f"blob store URL {url!r} names no folder")
        return FolderBlobStore(Path(path).expanduser().resolve())
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return FolderBlobStore(Path(url).resolve())
    raise UserError(f"blob store {url!r} is not supported in this version: use a folder path or file:// URL")
